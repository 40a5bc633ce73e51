"""Experiments of the course, run from YAML by ``cdtl run`` and by the chapters: one registry, one module per kind."""

from cdtl.experiments.common import ConfigError, OutputError, Result
from cdtl.experiments.registry import (
    CONFIG_DIR,
    DATASET_TAGS,
    KINDS,
    config_names,
    for_profile,
    format_table,
    load_config,
    resolve,
    run,
)

__all__ = ["CONFIG_DIR", "DATASET_TAGS", "KINDS", "ConfigError", "OutputError", "Result", "config_names", "for_profile",
           "format_table", "load_config", "resolve", "run"]

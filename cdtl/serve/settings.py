"""The service's settings, from flags or the environment (a container's way), each checked with a message naming its source.

A flag given on the command line wins; else the variable below; else the default. The same
settings serve ``cdtl serve`` and the app factory of ``uvicorn --factory``
(``cdtl.serve.server:create_app_from_env``), which reads the environment alone.

=====================  ==========================  =============================================
setting                variable                    default
=====================  ==========================  =============================================
bundle                 ``CDTL_BUNDLE``             none: a bundle folder must be named
host                   ``CDTL_HOST``               ``127.0.0.1`` (this machine only)
port                   ``CDTL_PORT``               ``8000``
log level              ``CDTL_LOG_LEVEL``          ``warning``
access log             ``CDTL_ACCESS_LOG``         off
read-only              ``CDTL_READ_ONLY``          off (writes need the bearer token)
index                  ``CDTL_INDEX``              ``auto``
token file             ``CDTL_SERVE_TOKEN_FILE``   none (else ``CDTL_SERVE_TOKEN`` holds the token)
added-item store       ``CDTL_ITEMS_STORE``        none: the service's own default
=====================  ==========================  =============================================
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from cdtl.env import EnvError, flag

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
VARIABLES = {"bundle": "CDTL_BUNDLE", "host": "CDTL_HOST", "port": "CDTL_PORT", "log_level": "CDTL_LOG_LEVEL",
             "access_log": "CDTL_ACCESS_LOG", "read_only": "CDTL_READ_ONLY", "index": "CDTL_INDEX",
             "token_file": "CDTL_SERVE_TOKEN_FILE", "items_store": "CDTL_ITEMS_STORE"}


@dataclass(frozen=True)
class ServeSettings:
    """Where and how to serve; ``resolve`` fills it from flags, the environment and the defaults."""

    bundle: str
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "warning"
    access_log: bool = False
    read_only: bool = False
    index: dict[str, Any] | None = None
    token_file: str | None = None
    items_store: str | None = None

    @classmethod
    def resolve(cls, **given: Any) -> ServeSettings:
        """Settings from ``given`` (None: not given), else the environment, else the defaults; bad values refused."""
        value = {name: given.get(name) for name in VARIABLES}
        for name, variable in VARIABLES.items():
            if value[name] is None and name not in ("access_log", "read_only"):
                raw = os.environ.get(variable, "").strip()
                value[name] = raw or None
        if value["access_log"] is None:
            value["access_log"] = flag(VARIABLES["access_log"])
        if value["read_only"] is None:
            value["read_only"] = flag(VARIABLES["read_only"])
        if not value["bundle"]:
            raise EnvError(f"no bundle to serve: give the bundle folder (cdtl serve BUNDLE) or set {VARIABLES['bundle']}")
        return cls(bundle=str(value["bundle"]), host=value["host"] or "127.0.0.1", port=_port(value["port"], given),
                   log_level=_log_level(value["log_level"], given), access_log=bool(value["access_log"]),
                   read_only=bool(value["read_only"]), index=_index(value["index"], given),
                   token_file=value["token_file"], items_store=value["items_store"])


def _source(name: str, given: dict[str, Any]) -> str:
    return f"--{name.replace('_', '-')}" if given.get(name) is not None else f"${VARIABLES[name]}"


def _port(raw: Any, given: dict[str, Any]) -> int:
    if raw is None:
        return 8000
    try:
        port = int(raw)
    except (TypeError, ValueError):
        raise EnvError(f"{_source('port', given)}={raw!r} is not a port number; give 0 to 65535 (0: any free port)") from None
    if not 0 <= port <= 65535:
        raise EnvError(f"{_source('port', given)}={port} is not a port number; give 0 to 65535 (0: any free port)")
    return port


def _log_level(raw: Any, given: dict[str, Any]) -> str:
    level = str(raw or "warning").strip().lower()
    if level not in LOG_LEVELS:
        raise EnvError(f"{_source('log_level', given)}={raw!r} is not a log level; use one of {', '.join(LOG_LEVELS)}")
    return level


def _index(raw: Any, given: dict[str, Any]) -> dict[str, Any]:
    if raw is None:
        return {"kind": "auto"}
    if isinstance(raw, dict):
        return raw
    text = str(raw).strip()
    if not text.startswith("{"):
        return {"kind": text}
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as err:
        raise EnvError(f"{_source('index', given)} {text!r} is not a JSON object ({err}); give a kind (auto, exact, "
                       "ivf, hnsw) or a JSON object of index settings") from err
    if not isinstance(parsed, dict):
        raise EnvError(f"{_source('index', given)} {text!r} must be a JSON object of index settings")
    return parsed


__all__ = ["LOG_LEVELS", "VARIABLES", "ServeSettings"]

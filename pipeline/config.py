"""Configuration: built-in defaults (``defaults.yaml``, generated from
``schema.py``), a user YAML file, then command-line overrides, in that
order.  The result is the validated
``schema.MdfsConfig``: each section a typed object (``cfg.coarse.zh.min_chars``),
picklable, shipped to workers with the DoFns that need a section of it;
``cfg.as_dict()`` is the plain mapping ``OUTPUT/config.yaml`` records."""
from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path

import yaml

from .schema import REPLACED_MAPS, Decontamination, DecontaminationSet, MdfsConfig
from .schema_check import validate

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
RESOURCES_DIR = Path(__file__).resolve().parent / "resources"
from mdfs.classifiers.langid import MODELS_DIR  # noqa: E402 - after the path constants it sits with
PLACEHOLDERS = {"{samples}": SAMPLES_DIR, "{resources}": RESOURCES_DIR, "{models}": MODELS_DIR}


def resolve_placeholders(node):
    """``{samples}``, ``{resources}`` and ``{models}`` in every string of ``node`` replaced by their folders."""
    if isinstance(node, dict):
        return {k: resolve_placeholders(v) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve_placeholders(v) for v in node]
    if isinstance(node, str) and "{" in node:
        for key, path in PLACEHOLDERS.items():
            node = node.replace(key, str(path))
    return node


def load_defaults() -> dict:
    """The shipped ``defaults.yaml``: generated from the schema's defaults (``defaults_file``), and
    a test holds the two equal; read as YAML so that what a person reads is what runs."""
    return yaml.safe_load(resources.files(__package__).joinpath("defaults.yaml").read_text(encoding="utf-8"))


def _replaced(path: tuple) -> bool:
    """Whether a user's value at this path replaces the default map (schema.REPLACED_MAPS)."""
    for pattern in REPLACED_MAPS:
        parts = pattern.split(".")
        if len(parts) == len(path) and all(p == "*" or p == k for p, k in zip(parts, path)):
            return True
    return False


def deep_merge(base: dict, override: dict, _path: tuple = ()) -> dict:
    out = copy.deepcopy(base)
    for k, v in (override or {}).items():
        here = (*_path, str(k))
        if isinstance(v, dict) and isinstance(out.get(k), dict) and not _replaced(here):
            out[k] = deep_merge(out[k], v, here)
        else:
            out[k] = copy.deepcopy(v)
    return out


def set_path(cfg: dict, dotted: str, value) -> None:
    keys = dotted.split(".")
    node = cfg
    for i, k in enumerate(keys[:-1]):
        if not isinstance(node.get(k), dict):
            if k in node:  # e.g. --set coarse.zh.min_chars.x=1: a value is not a section
                raise ValueError(f"--set {dotted}: {'.'.join(keys[:i + 1])} is a value, not a section")
            node[k] = {}
        node = node[k]
    node[keys[-1]] = value


def parse_assignment(text: str, what: str, form: str = "KEY=VALUE") -> tuple[str, str]:
    k, sep, v = text.partition("=")
    if not sep or not k.strip():
        raise ValueError(f"{what} expects {form}, got {text!r}")
    return k.strip(), v


def _read_yaml(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            user = yaml.safe_load(fh) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ValueError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror or exc}") from None
    if not isinstance(user, dict):
        raise ValueError(f"{path}: top level must be a mapping")
    return user


def _sets_name_a_source(sets: list[str] | None) -> bool:
    """Whether a ``--set`` names a source's data: ``sources``, ``sources.NAME`` or
    ``sources.NAME.paths`` (see load_config)."""
    for item in sets or []:
        keys = item.partition("=")[0].strip().split(".")
        if keys[0] == "sources" and (len(keys) < 3 or keys[2] == "paths"):
            return True
    return False


def load_config(config_file: str | None = None, sets: list[str] | None = None,
                sources: list[str] | None = None, base: dict | None = None,
                dedup_against: list[str] | None = None) -> MdfsConfig:
    """Build the effective configuration and check it against the schema.

    The bundled sample sources apply only when no source is named: not by the
    config file, not by ``--source`` and not by ``--set`` (a ``--set`` names a
    source when it sets ``sources``, ``sources.NAME`` or ``sources.NAME.paths``;
    ``--set sources.news.languages=[zh]`` tunes the sample source ``news``).  ``base`` replaces the defaults (``mdfs
    refilter``: an earlier run's configuration).  ``--source NAME=GLOB`` adds a source, or
    replaces the paths of a source of that name; repeating the same NAME adds
    more globs to it.  Raises ValueError with every problem found.
    """
    cfg = copy.deepcopy(base if base is not None else load_defaults())
    user = _read_yaml(config_file) if config_file else {}
    if user.get("sources") or sources or (base is None and _sets_name_a_source(sets)):
        cfg["sources"] = {}  # no sample joins data the user named
    cfg = deep_merge(cfg, user)
    seen = set()
    for item in sources or []:
        name, glob = parse_assignment(item, "--source", "NAME=GLOB")
        if not isinstance(cfg["sources"].get(name, {}), dict):
            raise ValueError(f"source {name!r} must be a mapping with 'paths'")
        if name in seen:
            cfg["sources"][name]["paths"].append(glob)
        else:
            cfg["sources"].setdefault(name, {})
            cfg["sources"][name]["paths"] = [glob]
            seen.add(name)
    touched = set()
    for item in sets or []:
        key, value = parse_assignment(item, "--set", "KEY.PATH=VALUE")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ValueError(f"--set {key}: value {value!r} is not valid YAML ({getattr(exc, 'problem', exc)})") \
                from None
        set_path(cfg, key, parsed)
        touched.add(key)
    if dedup_against:  # --dedup-against RUN_DIR, after the file's and --set's list
        if not isinstance(cfg.get("dedup_against"), list):
            cfg["dedup_against"] = []
        cfg["dedup_against"] = [*cfg["dedup_against"], *dedup_against]
    fine_user = user.get("fine") if isinstance(user.get("fine"), dict) else {}
    if "thresholds" not in fine_user and not any(k.startswith("fine.thresholds") for k in touched):
        # default thresholds never refer to a drop label the user removed
        fine = cfg.get("fine") if isinstance(cfg.get("fine"), dict) else {}
        if isinstance(fine.get("drop_labels"), dict) and isinstance(fine.get("thresholds"), dict):
            fine["thresholds"] = {k: v for k, v in fine["thresholds"].items() if k in fine["drop_labels"]}
    return finalize(cfg)


def source_format(src: dict) -> str:
    """A source's format: the configured one, else the one its files show."""
    fmt = src.get("format", "auto")
    if fmt != "auto":
        return fmt
    from .formats import detect_format

    found = set()
    for p in src.get("paths") or []:
        try:
            found.add(detect_format(str(p)))
        except ValueError:
            return "auto"
    return found.pop() if len(found) == 1 else "auto"


def _unknown_sources(sources: dict) -> list[str]:
    """A source without paths named like another source: a misspelt override, not a new source."""
    import difflib

    named = [n for n, s in sources.items() if s.get("paths")]
    out = []
    for name, src in sources.items():
        if not src.get("paths"):
            close = difflib.get_close_matches(str(name), named, n=1)
            if close:
                out.append(f"sources.{name}: no such source (did you mean {close[0]}?)")
    return out


def finalize(cfg: dict) -> MdfsConfig:
    """Fill each source from ``source_defaults``, resolve ``{samples}``/``{resources}``/``{models}``,
    check everything against the schema: the typed configuration."""
    if not isinstance(cfg.get("sources"), dict) or not cfg["sources"]:
        raise ValueError("no sources configured")
    base = cfg.get("source_defaults", {}) if isinstance(cfg.get("source_defaults"), dict) else {}
    resolved, problems = {}, []
    for name, src in cfg["sources"].items():
        if not isinstance(src, dict):
            problems.append(f"sources.{name}: must be a mapping with 'paths'")
            continue
        if "fields" in src and source_format(src) in ("warc", "wet"):
            problems.append(f"sources.{name}.fields: applies to jsonl and parquet sources only "
                            f"(this source is {source_format(src)})")
        full = deep_merge(base, src, ("sources", str(name)))
        if isinstance(full.get("fields"), dict):  # a replaced field map: what it leaves out is not read
            full["fields"] = {"id": None, "url": None, "date": None, **full["fields"]}
        if isinstance(full.get("paths"), str):
            full["paths"] = [full["paths"]]
        full["name"] = name
        resolved[name] = full
    cfg["sources"] = resolved
    problems += _unknown_sources(resolved)
    if problems:
        raise ValueError("; ".join(problems))
    read = cfg.get("read")
    if isinstance(read, dict) and read.get("language_gate") is False:
        read["language_gate"] = "off"  # YAML 1.1 reads a bare `off` as false
    fine = cfg.get("fine")
    if isinstance(fine, dict) and isinstance(fine.get("drop_labels"), dict) and isinstance(fine.get("thresholds"), dict):
        default = fine.get("default_threshold", 0.5)
        fine["thresholds"] = {**{k: default for k in fine["drop_labels"]}, **fine["thresholds"]}
    try:
        model = validate(resolve_placeholders(cfg))
    except ValueError as exc:
        problems.append(str(exc))
    else:
        problems += weight_problems(model.mix.weights, list(resolved))
    if problems:
        raise ValueError("; ".join(problems))
    return model


def as_given(cfg: dict) -> dict:
    """An effective configuration as a configuration file: the keys the loader
    fills into each source from ``source_defaults`` (and refuses when given for
    WARC sources) are left to it."""
    cfg, defaults = copy.deepcopy(cfg), load_defaults()
    for section in ("decontamination", "dedup_against"):  # added after the run: off, as the run had it
        cfg.setdefault(section, defaults[section])
    for key, value in defaults["output"].items():
        cfg["output"].setdefault(key, value)
    for src in cfg["sources"].values():
        src.pop("name", None)
        if source_format(src) in ("warc", "wet", "cc_index"):
            src.pop("fields", None)
    return cfg


def decontamination_sets(section: Decontamination) -> dict[str, DecontaminationSet]:
    """``decontamination.sets`` with every shorthand (a path, a list of paths) expanded: NAME -> the
    set with its paths, fields, ``id_field`` (``id`` when not given) and ``action`` (the section's when
    not given).  Expanded here, not before validation, so that config.yaml keeps the sets as given and
    a set without its own action follows ``decontamination.action`` when a refilter changes it."""
    out = {}
    for name, spec in section.sets.items():
        if isinstance(spec, (str, list)):
            spec = DecontaminationSet(paths=spec)
        out[name] = spec.model_copy(update={"id_field": spec.id_field or "id", "action": spec.action or section.action})
    return out


def weight_problems(weights: dict, sources: list[str], key: str = "mix.weights") -> list[str]:
    """Weights that name no source of the run (with the closest name), or that add up to more than 1."""
    import difflib

    out = []
    for name in weights:
        if name not in sources:
            close = difflib.get_close_matches(str(name), [str(s) for s in sources], n=1)
            out.append(f"{key}: {name!r} is not a source of this run "
                       + (f"(did you mean {close[0]}?)" if close else f"(sources: {', '.join(map(str, sources))})"))
    given = sum(float(v) for v in weights.values())
    if given > 1 + 1e-9:
        out.append(f"{key}: the weights add up to {given:.6g}, more than 1")
    return out

"""Checking a configuration against the schema (``schema.py``): ``validate``,
and what a person reads about it: one line per problem, the closest valid
key to a misspelled one, and the JSON Schema for editors (each key with its
default and its description from the schema)."""
from __future__ import annotations

import copy
import difflib
from typing import Annotated, Optional, Union

from pydantic import BaseModel, ValidationError

from .schema import MdfsConfig


# --- errors a person can act on ------------------------------------------------------

def _paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every dotted key of the schema ("*" for a free-form map's keys)."""
    out = []
    for name, f in model.model_fields.items():
        path = f"{prefix}{name}"
        out.append(path)
        ann = f.annotation
        sub = _model_of(ann)
        if sub is not None:
            out.extend(_paths(sub, path + "."))
        else:
            val = _map_value_model(ann)
            if val is not None:
                out.append(path + ".*")
                out.extend(_paths(val, path + ".*."))
    return out


def _model_of(ann):
    import typing

    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in typing.get_args(ann):
        if isinstance(arg, type) and issubclass(arg, BaseModel) and typing.get_origin(ann) is Union:
            return arg
    return None


def _map_value_model(ann):
    import typing

    if typing.get_origin(ann) is Annotated:
        ann = typing.get_args(ann)[0]
    if typing.get_origin(ann) is dict:
        val = typing.get_args(ann)[1]
        if isinstance(val, type) and issubclass(val, BaseModel):
            return val
    return None


ALL_KEYS = _paths(MdfsConfig)
ALL_KEYS_SET = set(ALL_KEYS)


def _generic(path: str, loc: tuple) -> str:
    """Replace free-form map keys (source names) in a dotted path by "*"."""
    out = []
    for p in path.split("."):
        prefix = ".".join(out)
        is_map_key = f"{prefix}.*" in ALL_KEYS_SET or any(k.startswith(f"{prefix}.*.") for k in ALL_KEYS)
        out.append("*" if is_map_key and f"{prefix}.{p}".lstrip(".") not in ALL_KEYS_SET else p)
    return ".".join(out)


def suggest(path: str) -> Optional[str]:
    """The closest valid key to a misspelled dotted key."""
    generic = _generic(path, ())
    parent, _, last = generic.rpartition(".")
    same_leaf = [k for k in ALL_KEYS if k.endswith("." + last) and k.startswith(parent.split(".")[0])]
    if same_leaf:
        return min(same_leaf, key=len)
    close = difflib.get_close_matches(generic, ALL_KEYS, n=1, cutoff=0.75)
    return close[0] if close else None


def format_errors(exc: ValidationError) -> list[str]:
    lines = []
    for err in exc.errors():
        loc = [str(x) for x in err["loc"] if not str(x).startswith(("function-", "literal["))]
        path = ".".join(loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            hint = suggest(path)
            lines.append(f"unknown key {path}" + (f" (did you mean {_concrete(hint, path)}?)" if hint else ""))
        elif err["type"] == "missing":
            lines.append(f"{path}: missing")
        else:
            got = err.get("input")
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"{path}: {msg}" + ("" if isinstance(got, dict) else f" (got {repr(got)[:60]})"))
    return lines


def _concrete(hint: str, path: str) -> str:
    """Put the user's own map keys (e.g. the source name) back into a suggestion."""
    given = path.split(".")
    return ".".join(given[i] if p == "*" and i < len(given) else p for i, p in enumerate(hint.split(".")))


def validate(cfg: dict) -> MdfsConfig:
    """The configuration checked against the schema, as the typed model every
    stage reads; raises ValueError listing every problem, one per line."""
    try:
        model = MdfsConfig.model_validate(cfg)
    except ValidationError as exc:
        raise ValueError("; ".join(format_errors(exc))) from None
    model._given = copy.deepcopy(cfg)
    return model


def json_schema(defaults: dict) -> dict:
    """JSON Schema for editors: the schema's descriptions, and each default from ``defaults``
    (defaults.yaml; pydantic leaves out the defaults made by a factory: lists, maps)."""
    schema = MdfsConfig.model_json_schema()
    defs = schema.get("$defs", {})

    def annotate(node: dict, values):
        if not isinstance(values, dict):
            return
        if "$ref" in node:
            node = defs[node["$ref"].split("/")[-1]]
        for key, prop in (node.get("properties") or {}).items():
            if key in values:
                target = defs[prop["$ref"].split("/")[-1]] if "$ref" in prop else prop
                if not isinstance(values[key], dict) or "properties" not in target:
                    prop.setdefault("default", values[key])
                annotate(prop, values[key])

    annotate(schema, defaults)
    schema["title"] = "mdfs configuration"
    return schema

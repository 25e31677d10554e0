"""``defaults.yaml`` generated from the schema: every default of ``schema.py``
with its description as a YAML comment, in the schema's key order.  The
package ships the generated file (``config.load_defaults`` reads it, people
read it); ``tests/test_strict_interface.py`` checks that the committed file is
exactly this text, so a key added to the schema fails the tests until the
file is regenerated::

    python -m mdfs.pipeline.defaults_file > pipeline/defaults.yaml
"""
from __future__ import annotations

import inspect
import sys
import textwrap

import yaml
from pydantic import BaseModel

from .schema import HEADER, MdfsConfig

WIDTH = 80  # comment lines are wrapped to this many columns
INLINE_WIDTH = 110  # a one-line description goes after its value when the line stays within this
INLINE_COLUMN = 32  # where inline comments start (when the value leaves room)


def _section_model(field) -> type[BaseModel] | None:
    """The model of a section field (its default is that model with its own defaults)."""
    factory = field.default_factory
    return factory if isinstance(factory, type) and issubclass(factory, BaseModel) else None


def _default(field, where: str):
    if field.is_required():  # every key of a section needs a default: defaults.yaml lists them all
        raise ValueError(f"{where}: a configuration key without a default in the schema")
    return field.default_factory() if field.default_factory is not None else field.default


def defaults_of(model: type[BaseModel]) -> dict:
    """Every default of ``model`` as plain data, in its key order."""
    out = {}
    for name, field in model.model_fields.items():
        sub = _section_model(field)
        out[name] = defaults_of(sub) if sub is not None else _default(field, f"{model.__name__}.{name}")
    return out


def _comment(text: str, indent: int) -> list[str]:
    """``text`` as comment lines: paragraphs wrapped, indented lines (examples) kept as they are, blank
    lines kept."""
    pad, out, para = " " * indent, [], []

    def flush():
        if para:
            out.extend(f"{pad}# {ln}" for ln in textwrap.wrap(" ".join(para), WIDTH - indent - 2,
                                                              break_on_hyphens=False, break_long_words=False))
            para.clear()

    for line in text.splitlines():
        if not line.strip():
            flush()
            out.append(f"{pad}#")
        elif line[0].isspace():
            flush()
            out.append(f"{pad}# {line}")
        else:
            para.append(line.strip())
    flush()
    return out


def _flow(value) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, allow_unicode=True, width=10**6)
    return text.removesuffix("\n...\n").strip()


def _block(value) -> bool:
    """Whether a plain mapping is written as a block (it holds mappings or lists) rather than in flow style."""
    return isinstance(value, dict) and bool(value) and any(isinstance(v, (dict, list)) for v in value.values())


def _key_line(indent: int, key, rest: str, description: str | None) -> list[str]:
    line = f"{' ' * indent}{_flow(key)}:{(' ' + rest) if rest else ''}"
    if not description:
        return [line]
    one_line = description if "\n" not in description else None
    if one_line is not None:
        inline = f"{line.ljust(INLINE_COLUMN - 2)}  # {one_line}"
        if len(inline) <= INLINE_WIDTH:
            return [inline]
    return [*_comment(description, indent), line]


def _plain(indent: int, key, value, description: str | None) -> list[str]:
    if not _block(value):
        return _key_line(indent, key, _flow(value), description)
    out = _key_line(indent, key, "", description)
    for k, v in value.items():
        out += _plain(indent + 2, k, v, None)
    return out


def _model(model: type[BaseModel], indent: int) -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        sub = _section_model(field)
        if sub is None:
            out += _plain(indent, name, _default(field, f"{model.__name__}.{name}"), field.description)
            continue
        out += _key_line(indent, name, "", field.description)
        if sub.__doc__:
            out += _comment(inspect.cleandoc(sub.__doc__), indent + 2)
        out += _model(sub, indent + 2)
    return out


def render_defaults() -> str:
    """The text of ``defaults.yaml``: the header, then each top-level key after a blank line."""
    out = _comment(HEADER, 0)
    for name, field in MdfsConfig.model_fields.items():
        out.append("")
        sub = _section_model(field)
        if sub is None:
            out += _plain(0, name, _default(field, name), field.description)
            continue
        out += _key_line(0, name, "", field.description)
        if sub.__doc__:
            out += _comment(inspect.cleandoc(sub.__doc__), 2)
        out += _model(sub, 2)
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render_defaults())

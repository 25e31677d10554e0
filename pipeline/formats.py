"""The input formats mdfs reads: the one list (name -> file name suffixes -> reader).

Everything that names formats derives from ``REGISTRY``: the configuration
schema's ``format`` choices (``FORMATS``), format detection from a file name
(``detect_format``), the reader the shared DoFn dispatches to
(``reader_class``), and a test checks the prose of defaults.yaml and the README
against it.  This module is one of the core types and imports nothing heavy (no Beam,
no Arrow, not the readers): the schema and the configuration loader import it.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Format:
    name: str
    suffixes: tuple[str, ...]  # file name endings that mean this format (lower case); () = set it explicitly
    reader: str  # "module:Class" of its reader (under mdfs.pipeline.io.readers), imported when first used
    by_file: bool = True  # False: its paths select records elsewhere (cc_index: index rows -> WARC ranges)


REGISTRY: dict[str, Format] = {f.name: f for f in (
    Format("warc", (".warc.gz", ".warc", ".arc.gz", ".arc"), "mdfs.pipeline.io.readers.warc_reader:WarcReader"),
    Format("wet", (".warc.wet.gz", ".wet.gz", ".wet"), "mdfs.pipeline.io.readers.warc_reader:WarcReader"),
    Format("jsonl", (".jsonl.gz", ".json.gz", ".jsonl", ".ndjson"), "mdfs.pipeline.io.readers.jsonl:JsonlReader"),
    Format("parquet", (".parquet",), "mdfs.pipeline.io.readers.parquet:ParquetReader"),
    Format("cc_index", (), "mdfs.pipeline.io.readers.cc_index:FetchReader", by_file=False),
)}

# the configuration's choices: detected from the file name, or one of the registered formats
FORMATS = ("auto", *REGISTRY)

# (suffix, format), longest suffix first, so ".warc.wet.gz" is a WET file, not a WARC one
FORMAT_SUFFIXES = sorted(((s, f.name) for f in REGISTRY.values() for s in f.suffixes),
                         key=lambda sf: (-len(sf[0]), sf[0]))


def detect_format(path: str) -> str:
    name = path.rsplit("/", 1)[-1].lower()
    for suffix, fmt in FORMAT_SUFFIXES:
        if name.endswith(suffix):
            return fmt
    raise ValueError(f"cannot tell the format of {path!r} from its name; set the source's format in config")


def reader_class(fmt: str):
    """The reader class of a registered format (its module is imported now)."""
    module, cls = REGISTRY[fmt].reader.split(":")
    return getattr(importlib.import_module(module), cls)

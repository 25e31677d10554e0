"""Readers: input files -> records, one reader per format behind one splittable DoFn.

* ``formats``: the list of formats (name -> file name suffixes -> reader), and
  ``detect_format``; a light module (the configuration schema imports it).
* ``base``: the readers' one interface (``Reader.read_records``: an open file and
  a span of it -> records with their offsets, drops, dead letters for damaged
  stretches, skips, and what the container offered).
* the readers: ``warc_reader`` (WARC, WET, ARC; framing and classification in
  ``warc``), ``jsonl``, ``parquet``, ``cc_index`` (a range named by Common
  Crawl's columnar index), all on top of ``container`` (plain files and gzip
  members).
* ``dofn``: the shared splittable DoFn (byte ranges, dispatch by format, the
  language gate) and the index DoFns; ``match``: globs -> files, each once;
  ``sources``: ``ReadSources``, the transform a pipeline reads all its sources with.

Every record a file offers ends in exactly one output: a ``RawRecord`` (main),
a ``Dropped`` (a policy: not HTML, HTTP status, too large, revisit), a
``Failed`` (unreadable bytes, with file and offset) or, for records that never
carry a document, a ``Skipped``.

The names below are loaded on first use: importing one reader module does
not import every other (nor Beam, for the light ones).
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "ReadSources": "sources",
    "ReadFileDoFn": "dofn", "ReadIndexDoFn": "dofn", "FetchIndexedDoFn": "dofn", "Dispatch": "dofn",
    "FileRange": "dofn", "FileRangeTracker": "dofn", "splittable_file": "dofn",
    "expand_pattern": "match", "matched_files": "match", "match_files": "match", "MatchPatternDoFn": "match",
    "GLOB_CHARS": "match",
    "FORMATS": "mdfs.pipeline.formats", "detect_format": "mdfs.pipeline.formats", "reader_class": "mdfs.pipeline.formats",
    "Reader": "base", "Span": "base", "Offered": "base", "shown_path": "base", "file_failure": "base",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        module = _EXPORTS[name]
        return getattr(importlib.import_module(module if module.startswith("mdfs.") else f"{__name__}.{module}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""``ReadSources``: every configured source -> (records, dropped, failed, skipped)."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

import apache_beam as beam

from ...records import DROPPED, FAILED, SKIPPED, Failed
from .dofn import FetchIndexedDoFn, ReadFileDoFn, ReadIndexDoFn
from ...formats import REGISTRY
from .match import match_files

if TYPE_CHECKING:
    from ...schema import Read, Source


def _by_file(src: Source) -> bool:
    return src.format == "auto" or REGISTRY[src.format].by_file


class ReadSources(beam.PTransform):
    """All configured sources -> (records, dropped, failed, skipped).

    File sources (WARC, WET, JSONL, Parquet) are read by one splittable DoFn
    whose elements name their source, so each output is one PCollection: no
    multi-input Flatten, which local runners materialise in memory.  A
    ``cc_index`` source is its own branch (select rows, reshuffle, fetch);
    with both kinds configured their outputs are flattened."""

    def __init__(self, sources: dict[str, Source], read: Read, lid_model: str | None = None,
                 only: tuple | None = None):
        """``sources``: {name: source} (``cfg.sources``); ``read``: the ``read`` section.
        ``only``: a unit's (files, unreadable) in a run in units of files
        (commands/units.py): the (source, path) pairs it reads of the files the
        globs match, and whether it also takes the glob entries that are not
        readable files (dead letters: one unit does)."""
        super().__init__()
        self.sources = sources
        self.read_cfg = read
        self.only = only
        self.lid_model = lid_model  # the language gate's fastText model (coarse.langid.model)

    def expand(self, pbegin):
        file_sources = {n: s for n, s in self.sources.items() if _by_file(s)}
        branches = []
        if file_sources:
            files = match_files(pbegin, [(n, pat) for n, s in file_sources.items() for pat in s.paths])
            if self.only is not None:
                files = files | "ThisUnit" >> beam.Filter(in_unit, *self.only)
            out = files | "Parse" >> beam.ParDo(ReadFileDoFn(file_sources, self.read_cfg, self.lid_model)) \
                .with_outputs(DROPPED, FAILED, SKIPPED, main="records")
            branches.append((out.records, out[DROPPED], out[FAILED], out[SKIPPED]))
        for name, src in self.sources.items():
            if not _by_file(src):
                branches.append(pbegin | f"Index[{name}]" >> _ReadIndexSource(name, src, self.read_cfg))
        if len(branches) == 1:
            return branches[0]
        labels = ("Records", "Dropped", "Failed", "Skipped")
        return tuple([b[i] for b in branches] | f"All{labels[i]}" >> beam.Flatten() for i in range(4))


def in_unit(element, files: frozenset, unreadable: bool) -> bool:
    """Whether a matched (source, path, size or Failed) belongs to the unit."""
    source, path, size = element
    if isinstance(size, Failed):
        return unreadable
    return (source, os.fsdecode(path)) in files


class _ReadIndexSource(beam.PTransform):
    """A cc_index source: index files -> selected rows -> reshuffled -> fetched."""

    def __init__(self, name: str, source: Source, read: Read):
        super().__init__()
        self.name, self.source, self.read_cfg = name, source, read

    def expand(self, pbegin):
        name = self.name
        matched = match_files(pbegin, [(name, p) for p in self.source.paths])
        index = matched | "SelectRows" >> beam.ParDo(ReadIndexDoFn(name, self.source)).with_outputs(
            FAILED, SKIPPED, main="rows")
        out = (index.rows
               # rows of one index file point all over the crawl: spread the fetches over workers
               | "SpreadRows" >> beam.Reshuffle()
               | "Fetch" >> beam.ParDo(FetchIndexedDoFn(name, self.source, self.read_cfg))
               .with_outputs(DROPPED, FAILED, SKIPPED, main="records"))
        failed = (out[FAILED], index[FAILED]) | "ReadFailed" >> beam.Flatten()
        skipped = (out[SKIPPED], index[SKIPPED]) | "ReadSkipped" >> beam.Flatten()
        return out.records, out[DROPPED], failed, skipped

"""Which files the sources' globs name, each once, as elements for the readers.

``match_files`` expands (source, glob) pairs on any Beam filesystem (local,
GCS, S3, HDFS) into ``(source, path, size)`` elements, one per file however
many patterns reach it; a glob entry that is not a readable file becomes
``(source, path, Failed)``, which the reader passes on as a dead letter.
"""
from __future__ import annotations

import glob as globlib
import os
import warnings

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from ...fs import exists
from .base import file_failure, shown_path

GLOB_CHARS = "*?["


# --- matching ------------------------------------------------------------------

def _escape_glob(path: str) -> str:
    return "".join(f"[{c}]" if c in GLOB_CHARS else c for c in path)


def expand_pattern(pattern: str) -> tuple[list[tuple[str, int]], list[tuple[str, str]]]:
    """(readable files as (path, size), unreadable entries as (path, why)).

    A pattern that names an existing file exactly is taken literally, even if
    it holds glob characters (``page[1].jsonl``).  Local patterns are matched
    by Python's glob (``**`` recursive), relative to the working directory, so
    ``*.parquet`` means the current folder's files; a trailing ``/`` means the
    folder's files (as Beam reads it).  Entries a local glob matches that are
    not readable regular files (directories, dangling links, link loops, no
    permission) are reported instead of being skipped in silence; folders a
    ``**`` walks through are not entries.  Remote patterns use Beam's
    matching (``*`` within one path segment, ``**`` across segments)."""
    if "://" in pattern:
        return _expand_remote(pattern), []
    if pattern.endswith("/"):
        pattern += "*"
    if any(c in pattern for c in GLOB_CHARS) and os.path.lexists(pattern):
        entries = [pattern]
    else:
        entries = globlib.glob(pattern, recursive=True)
    return _once_per_real_path(entries, pattern)


def _expand_remote(pattern: str) -> list[tuple[str, int]]:
    query = _escape_glob(pattern) if any(c in pattern for c in GLOB_CHARS) and exists(pattern) else pattern
    with warnings.catch_warnings():  # Beam's glob translation warns about the escapes ("[[]") it supports
        warnings.simplefilter("ignore", FutureWarning)
        matches = FileSystems.match([query])
    return [(m.path, m.size_in_bytes) for res in matches for m in res.metadata_list]


def _once_per_real_path(entries: list[str], pattern: str) -> tuple[list, list]:
    """Local glob entries, each real file once.  Python's ``**`` follows
    directory links (a link loop, down to the system's link depth): an entry
    that resolves to a file or folder already taken by a shorter path is the
    same one and is not read or reported again; folders a ``**`` walks through
    are not entries; the rest that are not readable files are reported once."""
    seen, kept, unreadable = set(), [], []
    for entry in sorted(set(entries), key=lambda e: (len(e), e)):  # the shortest path names the file
        full = os.path.abspath(entry)
        real = os.path.realpath(full)
        if real in seen:  # the same file or folder by another path: a link, a link loop
            continue
        seen.add(real)
        if os.path.isfile(full) and os.access(full, os.R_OK):
            kept.append((full, os.path.getsize(full)))
        elif not ("**" in pattern and os.path.isdir(full)):
            unreadable.append((full, _why_unreadable(full)))
    return sorted(kept), sorted(unreadable)


def _why_unreadable(path: str) -> str:
    if os.path.isdir(path):
        return "is a directory"
    if os.path.islink(path):
        try:
            os.stat(path)
        except OSError as exc:
            return f"broken or looping link ({exc.strerror})"
    if not os.access(path, os.R_OK):
        return "no read permission"
    return "not a regular file"



def portable(path: str):
    """A matched path as it travels between steps: Beam's coders write text as
    strict UTF-8, so a local name that is not UTF-8 travels as its bytes."""
    return path if shown_path(path) is path else os.fsencode(path)


def openable(path) -> str:
    """The path to open, from what ``portable`` sent."""
    return os.fsdecode(path) if isinstance(path, bytes) else path


def matched_files(patterns) -> list[str]:
    """The readable files the patterns match now, each once (for the CLI's preflight)."""
    return sorted({p for pat in patterns for p, _ in expand_pattern(pat)[0]})


class MatchPatternDoFn(beam.DoFn):
    """(source, pattern) -> ((source, path), size) of each readable file, and
    ((source, path), Failed) for entries that are not (the reader passes those
    on as dead letters: one stream, no Flatten)."""

    def process(self, source_pattern: tuple):
        source, pattern = source_pattern
        files, unreadable = expand_pattern(openable(pattern))
        for path, size in files:
            # keyed by the real path: two patterns that reach one local file through a link read it once
            real = path if "://" in path else os.path.realpath(path)
            yield (source, portable(real)), (portable(path), size)
        for path, why in unreadable:
            yield (source, shown_path(path)), (shown_path(path), file_failure(source, path, 0, "unreadable_file",
                                                                              f"{shown_path(path)}: {why}"))


def match_files(pbegin, source_patterns: list):
    """(source, glob) pairs -> (source, path, size or Failed), each file once, spread over workers."""
    source_patterns = [(s, portable(p)) for s, p in source_patterns]  # a pattern may name a non-UTF-8 file
    return (pbegin | "Patterns" >> beam.Create(source_patterns)
            | "Match" >> beam.ParDo(MatchPatternDoFn())
            # overlapping globs or a repeated --source match a file more than once: read it once
            | "OncePerFile" >> beam.CombinePerKey(shortest_path)
            | "Unkey" >> beam.MapTuple(lambda key, path_size: (key[0], *path_size))
            # spread the files over workers; the reader then splits big WARC files in byte ranges
            | "SpreadFiles" >> beam.Reshuffle())


def shortest_path(paths_sizes):
    """One (path, size) of a file matched more than once: the shortest name (then the first
    in order), whichever pattern matched it first, so the choice is the same on every runner."""
    found = list(paths_sizes)
    return min(found, key=lambda ps: (len(ps[0]), os.fsdecode(ps[0]))) if found else None

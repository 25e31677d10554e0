"""Parquet sinks for kept, dropped and failed records.

Beam's file sinks write to temporary files and rename them on finalisation,
so a shard that exists under ``kept/`` is complete; the run's ``_SUCCESS``
marker (written last by the CLI) says the whole output is complete.
"""
from __future__ import annotations

import json
import pickle
from typing import Callable

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.parquetio import WriteToParquet

import pyarrow as pa

from mdfs.schemas import SCHEMAS

_TAG: list = []  # the shard tag of the job whose graph is being built (``shard_tag``)


class shard_tag:
    """Within this block (a unit's graph being built, ``commands/units.py``), every
    ``WriteRecords`` names its shards ``NAME-TAG-*`` (``part-read-u00003p1-00000-of-00002.parquet``):
    the jobs of a run in units write into the same folders without meeting, and a
    resume removes an unfinished job's shards by their tag."""

    def __init__(self, tag: str):
        self.tag = tag

    def __enter__(self):
        _TAG.append(self.tag)

    def __exit__(self, *exc):
        _TAG.pop()
        return False


class WriteRecords(beam.PTransform):
    def __init__(self, kind: str, output_dir: str, compression: str = "zstd", num_shards: int = 0,
                 name: str = "part", folder: str | None = None):
        """``kind``: the schema (``schemas.SCHEMAS``); ``folder``: the directory under
        ``output_dir`` (default: the kind); ``name``: the shards' file name prefix;
        several sinks may write into one directory (``dropped/part-read-*``,
        ``dropped/part-stages-*``)."""
        super().__init__()
        self.kind = kind
        self.prefix = f"{output_dir.rstrip('/')}/{folder or kind}/{name}" + (f"-{_TAG[-1]}" if _TAG else "")
        self.compression = compression
        self.num_shards = num_shards

    def expand(self, records):
        return (records
                | "ToRow" >> beam.Map(lambda r: r.to_row())
                | "Parquet" >> WriteToParquet(self.prefix, SCHEMAS[self.kind], codec=self.compression,
                                              num_shards=self.num_shards, file_name_suffix=".parquet",
                                              record_batch_size=256, row_group_buffer_size=32 * 1024 * 1024))


# a unit's documents between its two jobs (commands/units.py): each Document pickled whole, as
# Beam's coder carries it between steps, so the later stages get exactly what one job gives them
STAGED_SCHEMA = pa.schema([pa.field("key", pa.string(), nullable=False),
                           pa.field("doc", pa.large_binary(), nullable=False)])


class WriteStaged(beam.PTransform):
    """Documents -> ``PREFIX-*.parquet`` (``STAGED_SCHEMA``), read back by ``ReadStaged``."""

    def __init__(self, prefix: str, compression: str = "zstd"):
        super().__init__()
        self.prefix, self.compression = prefix, compression

    def expand(self, docs):
        return (docs | "Pickle" >> beam.Map(lambda d: {"key": d.key, "doc": pickle.dumps(d, protocol=5)})
                | "Parquet" >> WriteToParquet(self.prefix, STAGED_SCHEMA, codec=self.compression,
                                              file_name_suffix=".parquet", record_batch_size=256,
                                              row_group_buffer_size=32 * 1024 * 1024))


class ReadStaged(beam.PTransform):
    """``WriteStaged``'s files (a glob) -> the documents."""

    def __init__(self, pattern: str):
        super().__init__()
        self.pattern = pattern

    def expand(self, p):
        from apache_beam.io.parquetio import ReadFromParquet

        return (p | "Parquet" >> ReadFromParquet(self.pattern, columns=["doc"])
                | "Unpickle" >> beam.Map(lambda row: pickle.loads(row["doc"])))


def write_json(obj: dict, path: str) -> None:
    with FileSystems.create(path) as fh:
        fh.write(json.dumps(obj, indent=2, ensure_ascii=False).encode("utf-8"))


class WriteJson(beam.PTransform):
    """A singleton PCollection (e.g. the output of ``ToList``) -> one JSON file,
    through ``build`` (the small reports: funnel, statistics, near-dedup)."""

    def __init__(self, path: str, build: Callable = lambda x: x):
        super().__init__()
        self.path = path
        self.build = build

    def expand(self, single):
        path, build = self.path, self.build
        return single | "Write" >> beam.Map(lambda value: write_json(build(value), path))

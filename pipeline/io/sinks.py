"""Parquet sinks for kept, dropped and failed records.

Beam's file sinks write to temporary files and rename them on finalisation,
so a shard that exists under ``kept/`` is complete; the run's ``_SUCCESS``
marker (written last by the CLI) says the whole output is complete.
"""
from __future__ import annotations

import json
from typing import Callable

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.parquetio import WriteToParquet

from mdfs.schemas import SCHEMAS


class WriteRecords(beam.PTransform):
    def __init__(self, kind: str, output_dir: str, compression: str = "zstd", num_shards: int = 0,
                 name: str = "part", folder: str | None = None):
        """``kind``: the schema (``schemas.SCHEMAS``); ``folder``: the directory under
        ``output_dir`` (default: the kind); ``name``: the shards' file name prefix;
        several sinks may write into one directory (``dropped/part-read-*``,
        ``dropped/part-stages-*``)."""
        super().__init__()
        self.kind = kind
        self.prefix = f"{output_dir.rstrip('/')}/{folder or kind}/{name}"
        self.compression = compression
        self.num_shards = num_shards

    def expand(self, records):
        return (records
                | "ToRow" >> beam.Map(lambda r: r.to_row())
                | "Parquet" >> WriteToParquet(self.prefix, SCHEMAS[self.kind], codec=self.compression,
                                              num_shards=self.num_shards, file_name_suffix=".parquet",
                                              record_batch_size=256, row_group_buffer_size=32 * 1024 * 1024))


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

"""Helpers shared by the tests."""
from __future__ import annotations

import functools
import gzip
import io
import json
import os
from pathlib import Path

import apache_beam as beam
import pyarrow.dataset as ds
from mdfs.pipeline.options import JobOptions, job_runner

from mdfs.pipeline.build import build_pipeline
from mdfs.pipeline.config import SAMPLES_DIR, load_config
from mdfs.pipeline.io.readers.base import Candidate, Offered, Span
from mdfs.pipeline.io.readers.dofn import Dispatch
from mdfs.pipeline.records import Dropped, Failed, RawRecord, Skipped
from mdfs.pipeline.schema import Read, Source

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


def make_source(**over) -> Source:
    """A source as the loader validates it: the defaults' fields, no language
    gate (``languages: []``), one placeholder path (readers are handed their
    files), then ``over``."""
    given = {**load_config().source_defaults.model_dump(), "languages": [], "paths": ["unused"], **over}
    return Source.model_validate(given)


def read_section(**over) -> Read:
    """The default ``read`` section with ``over`` set, validated as a configuration's is."""
    return Read.model_validate({**load_config().read.model_dump(), **over})


def _source(source: dict | None, read_overrides: dict | None) -> tuple[str, Source, Read]:
    """(name, source, read section); ``source`` may name the source (``name``, default ``t``)."""
    over = dict(source or {})
    name = over.pop("name", "t")
    return name, make_source(**over), read_section(**(read_overrides or {}))


def _tally(outcomes) -> dict:
    out = {"records": [], "dropped": [], "failed": [], "skipped": [], "candidates": [], "offered": []}
    kinds = ((RawRecord, "records"), (Dropped, "dropped"), (Failed, "failed"), (Skipped, "skipped"),
             (Candidate, "candidates"), (Offered, "offered"))
    for item in outcomes:
        out[next(k for cls, k in kinds if isinstance(item, cls))].append(item)
    return out


def read_file(path, source: dict | None = None, read_overrides: dict | None = None):
    """Read one file as the pipeline does (readers.Dispatch: its format's reader,
    then the language gate); returns {kind: [outcomes]} (kind 'records' for the
    main output, 'offered' for what the container offered)."""
    name, src, read = _source(source, read_overrides)
    dispatch = Dispatch({name: src}, read)
    return _tally(dispatch.read(name, str(path), os.path.getsize(path), Span()))


def read_with(reader_cls, path, source: dict | None = None, read_overrides: dict | None = None, span=None):
    """Call one reader on one file (the readers' interface, no language gate)."""
    name, src, read = _source(source, read_overrides)
    with open(path, "rb") as fh:
        return _tally(reader_cls(name, src, read).read_records(fh, str(path), os.path.getsize(path), span or Span()))


def run_job(out_dir: Path, *, config: str | None = None, sources: list[str] | None = None,
            sets: list[str] | None = None, beam_args: list[str] | None = None) -> dict:
    """Runs the pipeline in-process and returns the funnel and the three datasets as Python rows."""
    from mdfs.pipeline.commands.run import write_effective_config

    cfg = load_config(config, sets, sources)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_effective_config(cfg, str(out_dir))
    opts = JobOptions(beam_args or ["--runner=DirectRunner"])
    with beam.Pipeline(runner=job_runner(opts), options=opts) as p:
        build_pipeline(p, cfg, str(out_dir))
    return load_output(out_dir)


def load_output(out_dir: Path) -> dict:
    res = {"funnel": json.loads((out_dir / "funnel.json").read_text())}
    for kind in ("kept", "dropped", "failed"):
        res[kind] = ds.dataset(str(out_dir / kind), format="parquet").to_table().to_pylist()
    return res


def write_jsonl_gz(path: Path, rows: list, raw_lines: list[bytes] = ()):
    buf = io.BytesIO()
    for r in rows:
        buf.write(json.dumps(r, ensure_ascii=False).encode() + b"\n")
    for line in raw_lines:
        buf.write(line + b"\n")
    path.write_bytes(gzip.compress(buf.getvalue()))


def assert_invariant(result: dict):
    """read = kept + dropped + failed per source, in the funnel and recounted from the Parquet."""
    funnel = result["funnel"]
    for name, e in funnel["sources"].items():
        kept = sum(1 for r in result["kept"] if r["source"] == name)
        dropped = sum(1 for r in result["dropped"] if r["source"] == name)
        failed = sum(1 for r in result["failed"] if r["source"] == name)
        assert (e["kept"], e["dropped"], e["failed"]) == (kept, dropped, failed), name
        assert e["read"] == kept + dropped + failed, (name, e)
        assert e["invariant_ok"]
    assert funnel["total"]["invariant_ok"]


@functools.lru_cache(maxsize=1)
def news_sample_rows() -> tuple:
    """The bundled news feed, loaded once for every test that needs real text."""
    with gzip.open(SAMPLES_DIR / "news" / "news_sample.jsonl.gz", "rt", encoding="utf-8") as fh:
        return tuple(json.loads(line) for line in fh)


def real_zh_texts() -> list[str]:
    """Real Chinese article texts (human ground truth, bundled news sample) that
    pass the coarse rules: for planted cases that must survive to dedup.  The
    Chinese ground-truth articles carry no id in the feed; one Japanese page is
    among them and left out."""
    return [r["text"] for r in news_sample_rows() if "id" not in r and len(r["text"]) > 1500
            and not any("\u3040" <= c <= "\u30ff" for c in r["text"])]


def real_en_texts() -> list[str]:
    """Real English news articles of more than 300 words from the same feed."""
    return [r["text"] for r in news_sample_rows() if "id" in r and len(r["text"].split()) > 300]


def scores_dict(row: dict) -> dict:
    """The ``scores`` column of a kept row as a dict label -> probability."""
    return {s["label"]: s["prob"] for s in (row["scores"] or [])}

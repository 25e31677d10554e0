"""Dedup state: what a later run needs to deduplicate against this one
(``RUN_DIR/dedup_state/``), and reading it back (``--dedup-against``).

Each run writes, for every kept document, its exact-dedup hash (16 bytes) and
MinHash signature (``num_perm`` x 4 bytes) with its key, id, source, the
source's priority, date and length (``schemas.DEDUP_STATE_SCHEMA``), and
``dedup_state/_params.json``: the parameters two runs must share for their
hashes and signatures to be comparable (MinHash permutations, seed and
shingles, the exact-dedup normalisation) and every setting earlier in the
pipeline that changes the text dedup sees (extraction, line cleaning,
Traditional->Simplified, PII redaction, redacting decontamination sets).

A later run given ``--dedup-against RUN_DIR`` reads that state as a Beam
source (``ReadAllFromParquet``: files are split across workers, never
gathered on one) and adds every earlier document to its dedup joins as an
*earlier* member that sorts before every new document: a new document that
duplicates an earlier kept one is dropped (``exact_duplicate`` /
``near_duplicate``, detail ``RUN_DIR: id``), and nothing of the earlier run
is ever rewritten.  Earlier members join the exact-dedup ``GroupByKey`` by
hash and the near-dedup buckets by band key; their signatures join the
verification only where they share a bucket with a new document.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import apache_beam as beam

from ..records import Document
from ..config import decontamination_sets
from .dedup_exact import EARLIER_PREFIX, text_hash
from ..fs import exists

if TYPE_CHECKING:
    from ..schema import Decontamination, MdfsConfig, NearDedup

STATE_DIR = "dedup_state"
STATE_VERSION = 1
EXACT_NORMALISATION = "nfkc+casefold+whitespace (dedup_exact.normalise_for_exact)"

# settings that change the text the dedup stages see: two runs must agree on them
TEXT_KEYS = ("extract.engine", "extract.fallback_min_share", "extract.fallback_min_tokens",
             "extract.include_comments", "extract.include_tables", "extract.favor", "extract.fast",
             "extract.deduplicate", "coarse.normalise", "coarse.traditional_chinese", "coarse.lines",
             "pii.enabled", "pii.types", "pii.phone_regions", "pii.custom")
SIGNATURE_KEYS = ("near_dedup.num_perm", "near_dedup.seed", "near_dedup.shingles")


def _get(cfg: dict, dotted: str):
    node = cfg
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _redacting_sets(section: Decontamination) -> dict:
    return {name: s.paths for name, s in decontamination_sets(section).items() if s.action == "redact"}


def state_params(cfg: MdfsConfig) -> dict:
    """params.json of a run's dedup state: the settings as config.yaml records them."""
    recorded = cfg.as_dict()
    return {"version": STATE_VERSION, "exact_normalisation": EXACT_NORMALISATION,
            "signature": {k: _get(recorded, k) for k in SIGNATURE_KEYS},
            "text": {**{k: _get(recorded, k) for k in TEXT_KEYS},
                     "decontamination.redact_sets": _redacting_sets(cfg.decontamination)}}



def check_against(cfg: MdfsConfig, run_dir: str) -> list[str]:
    """Why ``run_dir`` cannot be deduplicated against (empty: it can)."""
    root = run_dir.rstrip("/")
    flag = f"--dedup-against {run_dir}"
    if not exists(root):
        return [f"{flag}: no such run directory"]
    if not exists(f"{root}/_SUCCESS"):
        return [f"{flag}: the run did not finish with _SUCCESS (incomplete or rejected output is no reference)"]
    params_path = f"{root}/{STATE_DIR}/_params.json"
    if not exists(params_path):
        return [f"{flag}: the run has no dedup state ({STATE_DIR}/_params.json): it was made with "
                "output.dedup_state: false or by an older mdfs; rerun it to build its state"]
    from ..io.readback import ReadBackError, inside

    try:
        theirs = _read_params(inside(root, params_path))
    except ReadBackError as exc:
        return [f"{flag}: {exc}"]
    mine, problems = state_params(cfg), []
    if theirs.get("version") != STATE_VERSION or theirs.get("exact_normalisation") != EXACT_NORMALISATION:
        problems.append(f"{flag}: its dedup state has another format or normalisation "
                        f"({theirs.get('version')}, {theirs.get('exact_normalisation')!r}); rerun it")
    for section, why in (("signature", "MinHash signatures would not be comparable"),
                         ("text", "the text dedup sees would differ between the runs")):
        for key, value in mine[section].items():
            other = (theirs.get(section) or {}).get(key)
            if other != value:
                problems.append(f"{flag}: {key} is {json.dumps(other, ensure_ascii=False)} there and "
                                f"{json.dumps(value, ensure_ascii=False)} here; {why}")
    if not problems:
        try:  # every state file opened and decoded now: a damaged one is refused before the job starts
            check_state_files(root, int(mine["signature"]["near_dedup.num_perm"]))
        except ReadBackError as exc:
            problems.append(f"{flag}: {exc}")
    return problems


PARAMS_SHAPE = {"version": int, "exact_normalisation": str, "signature": dict, "text": dict}


def _read_params(path: str) -> dict:
    from ..io.readback import expect, load_json

    theirs = load_json(path)
    expect(path, theirs, PARAMS_SHAPE)
    return theirs


def check_state_files(root: str, num_perm: int) -> int:
    """Rows of a run's dedup state, after checking every file (schema, types, no
    nulls, each signature ``num_perm`` x 4 bytes); raises ReadBackError."""
    import pyarrow.compute as pc

    from mdfs.schemas import DEDUP_STATE_SCHEMA

    from ..io.readback import check_parquet, parquet_files

    want = 4 * num_perm

    def signatures(batch, first: int):
        lengths = pc.binary_length(batch.column("signature"))
        bad = pc.not_equal(lengths, want)
        if pc.any(bad).as_py():
            i = pc.index(bad, True).as_py()
            return f"row {first + i}: a signature of {lengths[i].as_py()} bytes, not {want} ({num_perm} permutations)"
        return None

    return sum(check_parquet(path, DEDUP_STATE_SCHEMA, row_check=signatures)
               for path in parquet_files(f"{root}/{STATE_DIR}", root))


# --- writing --------------------------------------------------------------------------

@dataclass
class StateRow:
    key: str
    id: str
    source: str
    text_hash: bytes
    signature: bytes
    priority: int
    date: Optional[str]
    char_count: int

    def to_row(self) -> dict:
        return {"key": self.key, "id": self.id, "source": self.source, "text_hash": self.text_hash,
                "signature": self.signature, "priority": self.priority, "date": self.date,
                "char_count": self.char_count}


class StateRowDoFn(beam.DoFn):
    """A kept document -> its state row (hash and signature of the text dedup saw:
    the kept text, which only the stages before dedup change)."""

    def __init__(self, near_cfg: NearDedup, priorities: dict):
        self.near_cfg, self.priorities = near_cfg, priorities

    def setup(self):
        from .minhash import MinHasher

        c = self.near_cfg
        self._hasher = MinHasher(c.num_perm, c.seed, c.shingles)

    def process(self, doc: Document):
        sig = self._hasher.signature(doc.text, doc.language)
        yield StateRow(doc.key, doc.id, doc.source, bytes.fromhex(text_hash(doc.text)), sig.astype("<u4").tobytes(),
                       int(self.priorities.get(doc.source, 1 << 30)), doc.date, len(doc.text))


class WriteDedupState(beam.PTransform):
    """Kept documents -> ``dedup_state/part-*.parquet`` and ``dedup_state/_params.json``."""

    def __init__(self, cfg: MdfsConfig, output_dir: str, priorities: dict):
        super().__init__()
        self.params, self.near_cfg, self.priorities = state_params(cfg), cfg.near_dedup, priorities
        self.root, self.compression = output_dir.rstrip("/"), cfg.output.compression

    def expand(self, kept):
        from ..io.sinks import WriteRecords, write_json

        params, path = self.params, f"{self.root}/{STATE_DIR}/_params.json"
        (kept.pipeline | "Params" >> beam.Create([params])
         | "WriteParams" >> beam.Map(lambda p: write_json(p, path)))
        return (kept | "Rows" >> beam.ParDo(StateRowDoFn(self.near_cfg, self.priorities))
                | "Write" >> WriteRecords("dedup_state", self.root, self.compression, folder=STATE_DIR))


# --- reading ------------------------------------------------------------------------------

@dataclass
class Earlier:
    """A kept document of an earlier run, as a member of this run's dedup joins."""

    key: str  # EARLIER_PREFIX + run index + ":" + its record key
    label: str  # "RUN_DIR: id", the detail of what it drops
    text_hash: str  # hex, as dedup_exact.text_hash
    signature: bytes
    rank: tuple  # sorts before every new document's (see dedup_exact.rank_new)


class ReadEarlier(beam.PTransform):
    """The dedup state of earlier runs -> ``Earlier`` members (one PCollection,
    read file by file: no worker holds an earlier run's state)."""

    def __init__(self, runs: list[str]):
        super().__init__()
        self.runs = [r.rstrip("/") for r in runs]

    def expand(self, p):
        from apache_beam.io.parquetio import ReadAllFromParquet

        runs = self.runs
        patterns = [f"{r}/{STATE_DIR}/*.parquet" for r in runs]

        def to_earlier(named):
            path, row = named
            i = next(i for i, r in enumerate(runs) if path.startswith(f"{r}/{STATE_DIR}/"))
            yield Earlier(f"{EARLIER_PREFIX}{i}:{row['key']}", f"{runs[i]}: {row['id']}", row["text_hash"].hex(),
                          row["signature"], (0, i, row["priority"], row["date"] is None, row["date"] or "",
                                             -row["char_count"], row["id"]))

        return (p | "StatePatterns" >> beam.Create(patterns, reshuffle=False)
                | "ReadState" >> ReadAllFromParquet(with_filename=True, columns=[
                    "key", "id", "text_hash", "signature", "priority", "date", "char_count"])
                | "Earlier" >> beam.FlatMap(to_earlier))


class EarlierState:
    """The earlier runs' members, read once and shared by both dedup stages."""

    def __init__(self, runs: list[str]):
        self.runs = list(runs)
        self._collection = None

    def collection(self, pipeline):
        if self._collection is None:
            self._collection = pipeline | "ReadEarlierState" >> ReadEarlier(self.runs)
        return self._collection

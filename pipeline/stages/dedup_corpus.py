"""Corpus-wide exact and near dedup decisions from rows on disk, outside Beam.

Why: the DirectRunner holds every shuffle in memory (about 25 KB per document
measured, issue #33), so dedup as Beam joins caps a local run at a few hundred
thousand documents.  When the input is processed in units of files, each
unit's job writes one small *dedup row* per document (``DedupRows``,
``schemas.DEDUP_ROW_SCHEMA``: keep-rank fields, exact hash, MinHash signature
and LSH band keys, made with the functions the Beam stages use), and this
module's ``decide`` makes the decisions of ``ExactDedup`` followed by
``NearDedup`` over all units at once, with memory that does not hold the
signatures:

1. Ingest: the rows are streamed from Parquet batch by batch; signatures
   (``num_perm`` x 4 bytes) and band keys (bands x 8 bytes) go to files in
   ``workdir``, the short columns to a memory-mapped Arrow file there.
2. Exact: the 16-byte hashes are sorted (numpy); only groups of more than one
   copy are ranked in Python, by ``dedup_exact.rank_of`` (the keep rank of
   ``keep_rank``): the smallest (rank, key) is kept, the others are
   ``exact_duplicate`` of it.
3. Near, over the exact survivors, band by band (one band's keys in memory):
   each bucket gives the star of edges from its smallest record key to every
   other member (``dedup_near.bucket_edges``), edges are made distinct,
   verified by the estimated Jaccard of the two signatures (``verify_second``),
   joined into connected components (scipy's, exact: nothing is left
   unconverged), and each component is decided as ``decide_cluster`` does:
   the smallest (rank, key) is kept, a member is ``near_duplicate`` only if
   its own estimated Jaccard with the kept copy reaches the threshold.
4. The verdicts are written per unit (``decisions/unit-NNNNN.parquet``,
   ``schemas.DEDUP_DECISION_SCHEMA``) so that each unit's job reads only its
   own, with ``dedup_cluster`` / ``dedup_cluster_size`` as near dedup sets them;
   ``Decisions.near_stats`` is what ``near_dedup.json`` holds.

Memory: about 100 bytes per document (90-130 measured from 100,000 to
1,000,000 documents, bench/bench_dedup_corpus.py): numpy arrays of the exact
hash (16), key order (8), verdict, kept copy, cluster and size (21), shingle
unit (2), the unit column of the mapped file (8), and in each band the
survivors' keys, their sort order and the bucket starts (about 50 per
survivor, freed after the band); plus the record keys while they are sorted
(one Arrow sort of the mapped key column) and the candidate edges (16 bytes
each).  Signatures stay on disk and are read only for the two ends of
candidate edges and the members of components, ``CHUNK`` at a time.  Fixed
costs: one row group of the row files at a time (``ROW_GROUP`` rows; the
Parquet reader's allocator keeps about 150 MB).  Disk in ``workdir``:
``4 * num_perm + 8 * bands`` bytes per document plus the short columns
(about 1.3 KB at 256 permutations), removed at the end.  Members
of earlier runs (``--dedup-against``) are not handled here: such a
configuration is refused.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mdfs.schemas import DEDUP_DECISION_SCHEMA, DEDUP_ROW_SCHEMA
from .dedup_exact import rank_of, source_priority, text_hash
from .dedup_near import near_stats
from .minhash import MinHasher, band_keys, lsh_params
from ..records import Document

KEPT, EXACT, NEAR = 0, 1, 2
VERDICTS = {KEPT: "kept", EXACT: "exact_duplicate", NEAR: "near_duplicate"}
STAGES = {EXACT: "exact_dedup", NEAR: "near_dedup"}
SHORT_COLUMNS = ["unit", "key", "id", "priority", "date", "char_count"]
CHUNK = 4096  # signatures read at once: with 4 KB pages, at most 16 MB of the mapped file resident
ROW_GROUP = 8192  # rows per Parquet row group of a row file: a reader decodes one group at a time


def near_deciding(cfg) -> bool:
    near = cfg.near_dedup
    return bool(near.enabled and near.decisions)


def unsupported(cfg) -> str | None:
    """Why ``decide`` cannot make this configuration's dedup decisions (a run is then one job)."""
    if cfg.dedup_against:
        return "--dedup-against: earlier runs take part in the Beam stages' joins only"
    if cfg.near_dedup.enabled and not cfg.near_dedup.decisions:
        return "near_dedup.decisions is false (signatures only, a benchmark mode)"
    return None


def bands_rows(near) -> tuple[int, int]:
    """(bands, rows) as ``NearDedup`` computes them."""
    return lsh_params(float(near.threshold), int(near.num_perm), float(near.false_positive_weight),
                      float(near.false_negative_weight), near.bands, near.rows)


class DedupRows:
    """Document -> its dedup row (a dict in ``DEDUP_ROW_SCHEMA``); one instance per worker.

    The hash is ``dedup_exact.text_hash``, the signature, shingle unit and band
    keys are ``SignDoFn``'s (``MinHasher.shingle_spec``, ``signature_of_hashes``,
    ``minhash.band_keys``, whose hex digests are stored as 8 bytes each)."""

    def __init__(self, cfg, priorities: dict[str, int]):
        self.priorities = priorities
        self.exact = bool(cfg.exact_dedup.enabled)
        self.near = near_deciding(cfg)
        if self.near:
            near = cfg.near_dedup
            self.bands, self.rows = bands_rows(near)
            self.hasher = MinHasher(int(near.num_perm), int(near.seed), near.shingles)

    def row(self, doc: Document, unit: int) -> dict:
        out = {"unit": int(unit), "key": doc.key, "id": doc.id, "source": doc.source,
               "priority": source_priority(doc.source, self.priorities), "date": doc.date,
               "char_count": len(doc.text), "text_hash": None, "signature": None, "band_keys": None,
               "shingle_unit": None}
        if self.exact:
            out["text_hash"] = bytes.fromhex(text_hash(doc.text))
        if self.near:
            spec = self.hasher.shingle_spec(doc.text, doc.language)
            sig = self.hasher.signature_of_hashes(self.hasher.hashes(doc.text, spec))
            out["signature"] = sig.astype("<u4").tobytes()
            out["band_keys"] = b"".join(bytes.fromhex(k[2:]) for k in band_keys(sig, self.bands, self.rows))
            out["shingle_unit"] = f"{spec.unit} {spec.n}-grams"
        return out


class DedupRowDoFn(beam.DoFn):
    """The rows in a unit's Beam job: Document -> row dict (``DedupRows``, built in ``setup``)."""

    def __init__(self, cfg, priorities: dict[str, int], unit: int):
        self.cfg, self.priorities, self.unit = cfg, priorities, int(unit)

    def setup(self):
        self._rows = DedupRows(self.cfg, self.priorities)

    def process(self, doc: Document):
        yield self._rows.row(doc, self.unit)


def write_rows(rows: list[dict], path: str | os.PathLike) -> None:
    """Rows to one Parquet file, in row groups of ``ROW_GROUP`` (about 10 MB at 256 permutations)."""
    pq.write_table(pa.Table.from_pylist(rows, schema=DEDUP_ROW_SCHEMA), path, row_group_size=ROW_GROUP)


@dataclass
class Decisions:
    folder: Path  # decisions/unit-NNNNN.parquet, one per unit
    counts: dict  # documents per verdict
    near_stats: dict | None  # the contents of near_dedup.json (None: near dedup does not decide)
    work_bytes: int = 0  # disk the intermediate files in workdir took (removed at the end)

    def unit_path(self, unit: int) -> Path:
        return self.folder / f"unit-{int(unit):05d}.parquet"


@dataclass
class _Store:
    """The ingested rows: short columns mapped from ``rows.arrow``, the rest as files or arrays."""

    n: int
    table: pa.Table
    hashes: np.ndarray | None  # (n, 2) uint64
    shingle: np.ndarray | None  # int16 code per document
    shingle_names: list
    work: Path
    num_perm: int = 0
    bands: int = 0

    def sigs(self, idx: np.ndarray) -> np.ndarray:
        """Signatures of documents ``idx`` (at most ``CHUNK``), read from the file."""
        mm = np.memmap(self.work / "signatures.u32", dtype="<u4", mode="r", shape=(self.n, self.num_perm))
        try:
            return np.array(mm[idx])
        finally:
            del mm

    def band(self, b: int) -> np.ndarray:
        return np.fromfile(self.work / "bands.u64", dtype="<u8", count=self.n, offset=8 * b * self.n)

    def fields(self, idx: np.ndarray) -> list[tuple]:
        """(priority, date, char_count, id, key) of documents ``idx``."""
        t = self.table.take(pa.array(idx, type=pa.int64()))
        cols = [t.column(c).to_pylist() for c in ("priority", "date", "char_count", "id", "key")]
        return list(zip(*cols))


def row_files(rows) -> list[Path]:
    """A folder (its ``*.parquet`` files, recursively) or a list of files, in sorted order."""
    if isinstance(rows, (str, os.PathLike)):
        root = Path(rows)
        files = sorted(root.rglob("*.parquet")) if root.is_dir() else [root]
    else:
        files = [Path(f) for f in rows]
    if not files:
        raise ValueError(f"no dedup row files in {rows}")
    return files


def decide(rows, cfg, workdir: str | os.PathLike, batch_rows: int = 8192) -> Decisions:
    """The exact and near dedup decisions of every document in ``rows`` (see the
    module docstring), written under ``workdir/decisions``; the intermediate
    files in ``workdir`` are removed at the end."""
    if cfg.dedup_against:
        raise ValueError("dedup_corpus: --dedup-against (earlier runs) is not supported by the corpus-wide step")
    files = row_files(rows)
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    store = _ingest(files, cfg, work, batch_rows)
    verdict = np.zeros(store.n, dtype=np.int8)
    kept_by = np.arange(store.n, dtype=np.int64)
    cluster = size = stats = None
    if cfg.exact_dedup.enabled:
        _exact(store, list(cfg.exact_dedup.keep), verdict, kept_by)
    if near_deciding(cfg):
        cluster, size, stats = _near(store, cfg.near_dedup, verdict, kept_by)
    folder = work / "decisions"
    _write(store, verdict, kept_by, cluster, size, folder, batch_rows)
    counts = {VERDICTS[v]: int(np.count_nonzero(verdict == v)) for v in VERDICTS}
    del store
    work_bytes = 0
    for name in ("rows.arrow", "signatures.u32", "bands.u64"):
        if (work / name).exists():
            work_bytes += (work / name).stat().st_size
            (work / name).unlink()
    return Decisions(folder, counts, stats, work_bytes)


def _column_bytes(col, width: int, what: str, path) -> np.ndarray:
    """A binary column whose values are all ``width`` bytes -> (rows, width) uint8, no copy."""
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if col.null_count:
        raise ValueError(f"{path}: {what} is null in {col.null_count} rows (was that dedup stage off?)")
    if len(col) and not pc.all(pc.equal(pc.binary_length(col), width)).as_py():
        raise ValueError(f"{path}: {what} is not {width} bytes in every row (another configuration?)")
    if not len(col):
        return np.empty((0, width), dtype=np.uint8)
    if pa.types.is_fixed_size_binary(col.type):
        data = np.frombuffer(col.buffers()[1], dtype=np.uint8)
        return data[col.offset * width:(col.offset + len(col)) * width].reshape(len(col), width)
    off_type = np.int64 if pa.types.is_large_binary(col.type) else np.int32
    offsets = np.frombuffer(col.buffers()[1], dtype=off_type)[col.offset:col.offset + len(col) + 1]
    data = np.frombuffer(col.buffers()[2], dtype=np.uint8)
    return data[offsets[0]:offsets[-1]].reshape(len(col), width)


def _ingest(files: list[Path], cfg, work: Path, batch_rows: int) -> _Store:
    exact, near = bool(cfg.exact_dedup.enabled), near_deciding(cfg)
    n = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    num_perm = int(cfg.near_dedup.num_perm) if near else 0
    bands = bands_rows(cfg.near_dedup)[0] if near else 0
    hashes = np.empty((n, 2), dtype=np.uint64) if exact else None
    shingle, names = (np.empty(n, dtype=np.int16), {}) if near else (None, {})
    columns = SHORT_COLUMNS + (["text_hash"] if exact else []) + (["signature", "band_keys", "shingle_unit"]
                                                                     if near else [])
    short_schema = pa.schema([DEDUP_ROW_SCHEMA.field(c) for c in SHORT_COLUMNS])
    start = 0
    with pa.OSFile(str(work / "rows.arrow"), "wb") as sink, pa.ipc.new_file(sink, short_schema) as ipc, \
            open(work / "signatures.u32", "wb") as sig_out, open(work / "bands.u64", "wb") as band_out:
        if near:
            band_out.truncate(8 * bands * n)
        for path in files:
            pf = pq.ParquetFile(path, pre_buffer=False)  # pre-buffering would read the whole file's columns
            missing = [c for c in columns if c not in pf.schema_arrow.names]
            if missing:
                raise ValueError(f"{path}: not a dedup row file (no column {', '.join(missing)})")
            for batch in pf.iter_batches(batch_size=batch_rows, columns=columns, use_threads=False):
                m = batch.num_rows
                ipc.write_batch(pa.record_batch([batch.column(c).cast(short_schema.field(c).type)
                                                 for c in SHORT_COLUMNS], schema=short_schema))
                if exact:
                    hashes[start:start + m] = _column_bytes(batch.column("text_hash"), 16, "text_hash",
                                                            path).view("<u8")
                if near:
                    sig_out.write(_column_bytes(batch.column("signature"), 4 * num_perm, "signature", path))
                    keys = _column_bytes(batch.column("band_keys"), 8 * bands, "band_keys", path).view("<u8")
                    for b in range(bands):
                        os.pwrite(band_out.fileno(), np.ascontiguousarray(keys[:, b]), 8 * (b * n + start))
                    units = pc.dictionary_encode(batch.column("shingle_unit").fill_null("none"))
                    codes = np.array([names.setdefault(u, len(names)) for u in units.dictionary.to_pylist()],
                                     dtype=np.int16)
                    shingle[start:start + m] = codes[units.indices.to_numpy(zero_copy_only=False)]
                start += m
    table = pa.ipc.open_file(pa.memory_map(str(work / "rows.arrow"))).read_all()
    return _Store(n, table, hashes, shingle, list(names), work, num_perm, bands)


def _key_positions(store: _Store) -> np.ndarray:
    """Each document's position in record-key order (string order, as Beam compares keys)."""
    keys = store.table.column("key")
    order = pc.sort_indices(keys).to_numpy()
    ordered = keys.take(order)
    if store.n > 1 and pc.any(pc.equal(ordered[1:], ordered[:-1])).as_py():
        raise ValueError("dedup_corpus: a record key occurs in more than one dedup row")
    pos = np.empty(store.n, dtype=np.int64)
    pos[order] = np.arange(store.n, dtype=np.int64)
    return pos


def _groups(members: np.ndarray, starts: np.ndarray, chunk: int = 100_000):
    """Groups of ``members`` (contiguous, beginning at ``starts``) in chunks of about ``chunk``
    members, a group never split: yields (offset in members, member indices, group starts within them)."""
    bounds = np.append(starts, len(members))
    i = 0
    while i < len(starts):
        j = int(np.searchsorted(bounds, bounds[i] + chunk, side="right")) - 1
        j = min(max(j, i + 1), len(starts))
        yield int(bounds[i]), members[bounds[i]:bounds[j]], bounds[i:j] - bounds[i]
        i = j


def _best_per_group(store: _Store, criteria: list[str], members: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The member to keep of each group, one entry per member: the smallest (rank, key), as
    ``dedup_exact.decide`` and ``dedup_near.decide_cluster`` choose it."""
    out = np.empty(len(members), dtype=np.int64)
    for offset, idx, local in _groups(members, starts):
        fields = store.fields(idx)
        ends = [*local[1:], len(idx)]
        for s, e in zip(local.tolist(), ends):
            best = min(range(s, int(e)), key=lambda i: (rank_of(criteria, *fields[i]), fields[i][4]))
            out[offset + s:offset + int(e)] = idx[best]
    return out


def _exact(store: _Store, criteria: list[str], verdict: np.ndarray, kept_by: np.ndarray) -> None:
    """dedup_exact: per group of equal hashes, the smallest (rank, key) kept, the others dropped."""
    hi, lo = store.hashes[:, 0], store.hashes[:, 1]
    order = np.lexsort((lo, hi))
    hi, lo = hi[order], lo[order]
    new = np.ones(store.n, dtype=bool)
    new[1:] = (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1])
    del hi, lo
    starts = np.flatnonzero(new)
    sizes = np.diff(np.append(starts, store.n))
    in_multi = np.repeat(sizes > 1, sizes)  # per sorted position: its group has copies
    members = order[in_multi]
    multi_sizes = sizes[sizes > 1]
    del order, in_multi, new
    if not len(members):
        return
    mstarts = np.concatenate(([0], np.cumsum(multi_sizes)[:-1]))
    best = _best_per_group(store, criteria, members, mstarts)
    dup = best != members
    verdict[members[dup]] = EXACT
    kept_by[members[dup]] = best[dup]
    store.hashes = None  # not needed any more


def _jaccard_pairs(store: _Store, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``minhash.estimated_jaccard`` of the signatures of documents a[i] and b[i]
    (share of equal slots, as float64: the same division), a chunk at a time."""
    out = np.empty(len(a), dtype=np.float64)
    for s in range(0, len(a), CHUNK // 2):
        ia, ib = a[s:s + CHUNK // 2], b[s:s + CHUNK // 2]
        need = np.unique(np.concatenate((ia, ib)))
        sig = store.sigs(need)
        eq = sig[np.searchsorted(need, ia)] == sig[np.searchsorted(need, ib)]
        out[s:s + len(ia)] = np.count_nonzero(eq, axis=1) / store.num_perm
    return out


def _candidates(store: _Store, survivors: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Distinct candidate edges as codes a * n + b: per band and bucket, the star from the
    member with the smallest record key (``dedup_near.bucket_edges``) to every other member."""
    surv = survivors[np.argsort(pos[survivors], kind="stable")]  # in key order
    edges = np.empty(0, dtype=np.int64)
    for b in range(store.bands):
        keys = store.band(b)[surv]
        o = np.argsort(keys, kind="stable")  # stable: a bucket's first member has its smallest key
        ks = keys[o]
        del keys
        first = np.ones(len(ks), dtype=bool)
        first[1:] = ks[1:] != ks[:-1]
        del ks
        low = o[np.flatnonzero(first)][np.cumsum(first) - 1]
        rest = ~first
        codes = surv[low[rest]] * np.int64(store.n) + surv[o[rest]]
        edges = np.union1d(edges, codes)
    return edges


def _components(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(nodes, component label of each node) of the undirected graph of edges a-b."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    nodes = np.unique(np.concatenate((a, b)))
    ia, ib = np.searchsorted(nodes, a), np.searchsorted(nodes, b)
    graph = coo_matrix((np.ones(len(ia), dtype=np.int8), (ia, ib)), shape=(len(nodes), len(nodes))).tocsr()
    return nodes, connected_components(graph, directed=False)[1]


def _near(store: _Store, near: dict, verdict: np.ndarray, kept_by: np.ndarray):
    """dedup_near over the exact survivors: returns (cluster, size, near_dedup.json)."""
    threshold = float(near.threshold)
    criteria = list(near.keep)  # schema.KeepCriterion: each one known
    survivors = np.flatnonzero(verdict == KEPT)
    edges = _candidates(store, survivors, _key_positions(store))
    n64 = np.int64(store.n)
    a, b = edges // n64, edges % n64
    candidate_edges = len(edges)
    del edges
    if near.verify:
        ok = _jaccard_pairs(store, a, b) >= threshold
        a, b = a[ok], b[ok]
    cluster = np.full(store.n, -1, dtype=np.int64)
    size = np.zeros(store.n, dtype=np.int32)
    cluster[survivors], size[survivors] = survivors, 1
    nodes, labels = _components(a, b)
    verified_edges = len(a)
    del a, b
    order = np.argsort(labels, kind="stable")
    members, lab = nodes[order], labels[order]
    del nodes, labels, order
    starts = np.flatnonzero(np.concatenate(([True], lab[1:] != lab[:-1]))) if len(lab) else np.empty(0, np.int64)
    best = _best_per_group(store, criteria, members, starts)
    similar = (members == best) | (_jaccard_pairs(store, members, best) >= threshold)
    dropped = similar & (members != best)
    verdict[members[dropped]] = NEAR
    kept_by[members[dropped]] = best[dropped]
    cluster[members[dropped]], size[members[dropped]] = -1, 0
    heads, counts = np.unique(best[similar], return_counts=True)  # each kept copy and what it stands for
    size[heads] = counts
    units = np.bincount(store.shingle[survivors], minlength=len(store.shingle_names))
    pairs = [("candidate_edges", candidate_edges), ("verified_edges", verified_edges),
             ("documents_in_components", len(members))]
    pairs += [(("unit", name), int(k)) for name, k in zip(store.shingle_names, units) if k]
    params = {"num_perm": int(near.num_perm), "threshold": threshold, "bands": store.bands,
              "rows": bands_rows(near)[1], "verify": bool(near.verify), "max_rounds": int(near.max_rounds)}
    return cluster, size, {**params, **near_stats(pairs, False)}


def _write(store: _Store, verdict, kept_by, cluster, size, folder: Path, batch_rows: int) -> None:
    """One Parquet file per unit, its documents in ingest order."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    if not store.n:
        return
    units = store.table.column("unit").to_numpy()
    order = np.argsort(units, kind="stable")
    bounds = np.flatnonzero(np.concatenate(([True], units[order][1:] != units[order][:-1], [True])))
    ids = store.table.column("id")
    for s, e in zip(bounds[:-1], bounds[1:]):
        unit = int(units[order[s]])
        with pq.ParquetWriter(folder / f"unit-{unit:05d}.parquet", DEDUP_DECISION_SCHEMA) as writer:
            for c in range(s, e, batch_rows):
                idx = order[c:min(c + batch_rows, e)]
                writer.write_table(_decision_table(store, ids, idx, verdict, kept_by, cluster, size))


def _decision_table(store, ids, idx, verdict, kept_by, cluster, size) -> pa.Table:
    v = verdict[idx]
    dup = v != KEPT
    take = pa.array(idx, type=pa.int64())
    detail = ids.take(pa.array(kept_by[idx], type=pa.int64()))
    cols = {"unit": store.table.column("unit").take(take), "key": store.table.column("key").take(take),
            "id": ids.take(take), "verdict": pa.array([VERDICTS[x] for x in v.tolist()], pa.string()),
            "stage": pa.array([STAGES.get(x) for x in v.tolist()], pa.string()),
            "detail": pc.if_else(pa.array(dup), detail, pa.scalar(None, pa.string()))}
    if cluster is None:
        cols["dedup_cluster"] = pa.nulls(len(idx), pa.string())
        cols["dedup_cluster_size"] = pa.nulls(len(idx), pa.int64())
    else:
        c = cluster[idx]
        has = c >= 0
        named = ids.take(pa.array(np.where(has, c, 0), type=pa.int64()))
        cols["dedup_cluster"] = pc.if_else(pa.array(has), named, pa.scalar(None, pa.string()))
        cols["dedup_cluster_size"] = pa.array(size[idx].astype(np.int64), mask=~has)
    return pa.table(cols, schema=DEDUP_DECISION_SCHEMA)


def write_stats(decisions: Decisions, path: str) -> None:
    """near_dedup.json as NearDedup writes it (``sinks.write_json``)."""
    from ..io.sinks import write_json

    write_json(decisions.near_stats, path)

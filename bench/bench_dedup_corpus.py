"""The corpus-wide dedup step (pipeline/stages/dedup_corpus.py) at 100,000 and 1,000,000 documents.

  python bench/bench_dedup_corpus.py [--sizes 100000 1000000] [--family 5] [--workdir DIR]
  python bench/bench_dedup_corpus.py --parity 5000 [--text ../shared/data/text]

``--parity N``: the Beam stages and decide() on N documents of real sentences
(bench/bench_scale.py's corpus), every row compared (see ``parity``).

For each size, writes N synthetic dedup rows (``schemas.DEDUP_ROW_SCHEMA``):
random 256-slot signatures (MinHash values are uniformly distributed, so
random ones have the real distribution of band keys), band keys made by
``minhash.band_keys`` with the default 25 x 10 bands, a family of 5 near
copies (20 slots of 256 changed each, estimated Jaccard 0.84-0.92, above the
0.8 threshold) in every 50 documents (``--family 25``: half the corpus) and an exact pair in every 100, in files
of 50,000 rows (row groups of ``dedup_corpus.ROW_GROUP``), 8 units.  Then ``decide()`` runs in a child process with the
default configuration; the child reports its wall and CPU seconds and peak
RSS (``VmHWM``), and a peer child that only imports the module gives the
baseline RSS (Python, numpy, pyarrow and Beam, which ``dedup_near`` imports).
Printed as JSON: seconds per 1M documents, RSS above the baseline, bytes per
document of the row files and of decide()'s intermediate files, the verdict
counts (checked against the planted ones).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

FILE_ROWS = 50_000
FAMILY, EVERY, CHANGED, PAIR_EVERY = 5, 50, 20, 100


def write_rows(n: int, folder: Path, seed: int = 1, family: int = FAMILY) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mdfs.pipeline.stages.dedup_corpus import ROW_GROUP
    from mdfs.pipeline.stages.minhash import band_keys
    from mdfs.schemas import DEDUP_ROW_SCHEMA

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for start in range(0, n, FILE_ROWS):
        i = np.arange(start, min(n, start + FILE_ROWS))
        sigs = rng.integers(0, 2 ** 32, size=(len(i), 256), dtype=np.uint32)
        base = (i // EVERY) * EVERY
        fam = (i % EVERY < family) & (i % EVERY > 0)
        if start % EVERY:
            raise ValueError("FILE_ROWS must be a multiple of EVERY")
        sigs[fam] = sigs[base[fam] - start]
        slots = rng.integers(0, 256 - CHANGED, size=int(fam.sum()))
        rows_fam = np.flatnonzero(fam)
        for r, s in zip(rows_fam, slots):
            sigs[r, s:s + CHANGED] = rng.integers(0, 2 ** 32, size=CHANGED, dtype=np.uint32)
        # an exact pair in every PAIR_EVERY documents: the same text hash, documents far from any family
        hash_of = np.where(i % PAIR_EVERY == 90, i - 50, i)  # both outside families of up to 40
        hashes = [hashlib.blake2b(str(h).encode(), digest_size=16).digest() for h in hash_of.tolist()]
        bands = [b"".join(bytes.fromhex(k[2:]) for k in band_keys(s, 25, 10)) for s in sigs]
        table = pa.table({
            "unit": pa.array(i * 8 // n, pa.int64()),
            "key": pa.array([hashlib.blake2b(str(x).encode(), digest_size=12).hexdigest() for x in i.tolist()]),
            "id": pa.array([f"doc{x}" for x in i.tolist()]),
            "source": pa.array(["web"] * len(i)),
            "priority": pa.array(np.ones(len(i), dtype=np.int64)),
            "date": pa.nulls(len(i), pa.string()),
            "char_count": pa.array(rng.integers(500, 5000, size=len(i)), pa.int64()),
            "text_hash": pa.array(hashes, pa.binary(16)),
            "signature": pa.array([s.tobytes() for s in sigs], pa.binary()),
            "band_keys": pa.array(bands, pa.binary()),
            "shingle_unit": pa.array(["char 5-grams"] * len(i)),
        }, schema=DEDUP_ROW_SCHEMA)
        pq.write_table(table, folder / f"part-{start // FILE_ROWS:05d}.parquet", row_group_size=ROW_GROUP)


def peak_rss_kb() -> int:
    """This process's peak RSS (VmHWM: ``ru_maxrss`` would carry the parent's peak over exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def child_decide(rows: str, work: str) -> None:
    from mdfs.pipeline.config import load_config
    from mdfs.pipeline.stages.dedup_corpus import decide

    t0, c0 = time.perf_counter(), time.process_time()
    result = decide(rows, load_config(), work)
    print(json.dumps({"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
                      "maxrss_kb": peak_rss_kb(), "counts": result.counts, "work_bytes": result.work_bytes,
                      "near": result.near_stats}))


def child_baseline() -> None:
    import mdfs.pipeline.stages.dedup_corpus  # noqa: F401
    import mdfs.pipeline.config  # noqa: F401

    print(json.dumps({"maxrss_kb": peak_rss_kb()}))


def _child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(n: int, root: Path, family: int = FAMILY) -> dict:
    rows, work = root / f"rows{n}", root / f"work{n}"
    t0 = time.perf_counter()
    write_rows(n, rows, family=family)
    gen_s = time.perf_counter() - t0
    row_bytes = sum(p.stat().st_size for p in rows.glob("*.parquet"))
    base = _child("--baseline")
    res = _child("--decide", str(rows), str(work))
    families = n // EVERY
    want_near = families * (family - 1) + max(0, min(n % EVERY, family) - 1)
    want_exact = sum(1 for x in range(n) if x % PAIR_EVERY == 90)
    shutil.rmtree(rows)
    shutil.rmtree(work)
    return {"documents": n, "family": family, "generate_s": round(gen_s, 1), "decide_wall_s": round(res["wall_s"], 1),
            "decide_cpu_s": round(res["cpu_s"], 1),
            "decide_cpu_s_per_1M": round(res["cpu_s"] * 1e6 / n, 1),
            "peak_rss_mb": round(res["maxrss_kb"] / 1024), "baseline_rss_mb": round(base["maxrss_kb"] / 1024),
            "rss_above_baseline_bytes_per_doc": round((res["maxrss_kb"] - base["maxrss_kb"]) * 1024 / n),
            "row_file_bytes_per_doc": round(row_bytes / n), "work_bytes_per_doc": round(res["work_bytes"] / n),
            "counts": res["counts"], "planted": {"near_duplicate": want_near, "exact_duplicate": want_exact},
            "candidate_edges": res["near"]["candidate_edges"], "verified_edges": res["near"]["verified_edges"]}


def parity(n: int, root: Path) -> dict:
    """bench_scale's corpus of real sentences (n documents, families spanning shards; 8 shards =
    8 units), with sources, missing dates and exact copies mixed in: the Beam stages ExactDedup +
    NearDedup on the DirectRunner against decide(); the kept and dropped rows and near_dedup.json
    compared.  Reads ../shared/data, so it is a bench, not a test."""
    import gzip

    import apache_beam as beam

    from bench_scale import generate
    from mdfs.pipeline.config import load_config
    from mdfs.pipeline.stages.dedup_corpus import DedupRows, decide, write_rows as write_row_file
    from mdfs.pipeline.stages.dedup_exact import ExactDedup
    from mdfs.pipeline.stages.dedup_near import NearDedup
    from mdfs.pipeline.records import Document, record_key

    generate(n, root / "corpus", per_shard=max(1, n // 8))
    units_docs = []
    for unit, path in enumerate(sorted((root / "corpus").glob("*.jsonl.gz"))):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for line_no, line in enumerate(fh):
                r = json.loads(line)
                i = int(r["id"][1:])
                units_docs.append((unit, Document(key=record_key("web", str(path), line_no), id=r["id"],
                                                  source=("news", "web", "blog")[i % 3], text=r["text"],
                                                  date=None if i % 5 == 0 else r["date"], url=r["url"])))
                if i % 97 == 0:  # an exact copy in the next unit
                    units_docs.append(((unit + 1) % 8, Document(key=record_key("copy", str(path), line_no),
                                                                id=f"c{i}", source="web", date=r["date"],
                                                                text="  " + r["text"].upper())))
    cfg, priorities = load_config(), {"news": 1, "web": 2}
    maker = DedupRows(cfg, priorities)
    (root / "rows").mkdir()
    for u in range(8):
        write_row_file([maker.row(d, unit) for unit, d in units_docs if unit == u], root / "rows" / f"u{u}.parquet")
    t0 = time.perf_counter()
    result = decide(root / "rows", cfg, root / "work")
    decide_s = time.perf_counter() - t0
    import pyarrow.parquet as pq

    mine = {}
    for path in result.folder.glob("*.parquet"):
        for r in pq.read_table(path).to_pylist():
            mine[r["key"]] = ((r["verdict"], r["stage"], r["detail"]) if r["verdict"] != "kept"
                              else ("kept", r["dedup_cluster"], r["dedup_cluster_size"]))
    t0 = time.perf_counter()
    with beam.Pipeline() as p:
        exact = p | beam.Create([d for _, d in units_docs]) | "E" >> ExactDedup(cfg["exact_dedup"], priorities)
        near = exact.kept | "N" >> NearDedup(cfg["near_dedup"], priorities, stats_path=str(root / "near.json"))
        kept = near.kept | "K" >> beam.Map(lambda d: json.dumps([d.key, "kept", d.dedup_cluster,
                                                                  d.dedup_cluster_size]))
        drops = ((exact.dropped, near.dropped) | beam.Flatten()
                 | "D" >> beam.Map(lambda d: json.dumps([d.key, d.reason, d.stage, d.detail])))
        (kept, drops) | "All" >> beam.Flatten() | beam.io.WriteToText(str(root / "beam"), shard_name_template="")
    beam_s = time.perf_counter() - t0
    theirs = {}
    for line in (root / "beam").read_text().splitlines():
        key, *rest = json.loads(line)
        theirs[key] = tuple(rest)
    differ = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
    stats_same = json.loads((root / "near.json").read_text()) == result.near_stats
    return {"parity_documents": len(units_docs), "counts": result.counts, "differing_documents": len(differ),
            "examples": [(k, mine.get(k), theirs.get(k)) for k in differ[:3]], "near_dedup_json_same": stats_same,
            "decide_s": round(decide_s, 1), "beam_s": round(beam_s, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--family", type=int, default=FAMILY, choices=range(1, 41), metavar="1..40",
                    help=f"documents per family of near copies in every {EVERY} (default {FAMILY})")
    ap.add_argument("--decide", nargs=2, metavar=("ROWS", "WORK"))
    ap.add_argument("--baseline", action="store_true")
    ap.add_argument("--parity", type=int, metavar="N", help="compare with the Beam stages on N real-text documents")
    ap.add_argument("--text", type=Path, default=None,
                    help="the folder of real text bench_scale reads (default: its ../shared/data/text)")
    args = ap.parse_args()
    if args.decide:
        return child_decide(*args.decide)
    if args.baseline:
        return child_baseline()
    root = Path(tempfile.mkdtemp(prefix="bench_dedup_corpus_", dir=args.workdir))
    try:
        if args.parity:
            if args.text:
                import bench_scale

                bench_scale.TEXT = args.text
            print(json.dumps(parity(args.parity, root)), flush=True)
            return
        for n in args.sizes:
            print(json.dumps(measure(n, root, args.family)), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

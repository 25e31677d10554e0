"""Incremental runs: the cost of --dedup-against an earlier run ten times
larger, the dedup state's size, and what each earlier document ships.

  python bench/bench_incremental.py [--shared ../shared/data] [--docs 2000] [--ratio 10]

* B: the end-to-end benchmark's WARC input (real pages of ../shared/data as
  WARC records, replicated to --docs records in 8 files), run once without
  and once with ``--dedup-against A`` (DirectRunner in-process, defaults,
  whole process tree CPU and wall time).  Target: <= 1.2x.
* A: an earlier run that kept --ratio times as many documents as B keeps:
  half of B's distinct pages as trafilatura extracts them (so B finds exact
  duplicates of them) and documents of 10-40 real sentences drawn from the
  Chinese and English web text of ../shared/data/text, as JSONL.
* Dedup state bytes per kept document (target <= 1.2 KB at 256
  permutations) and against the kept output; the bytes each earlier document
  ships through B's shuffles (Beam's default coder on the elements
  ``dedup_state.ReadEarlier`` feeds the exact and near dedup joins).

Writes the "incremental" section of bench/results.json and the "Incremental
runs" figures of docs/NEAR_DEDUP.md (``--render`` rewrites them from the JSON).
"""
from __future__ import annotations

import argparse
import gzip
import json
import platform
import random
import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))


def _sentences(shared: Path) -> dict:
    zh = [json.loads(line)["raw_content"] for line in
          gzip.open(shared / "text" / "ccnet_zh_cc2022_chinesewebtext.jsonl.gz", "rt", encoding="utf-8")]
    en = []
    for f in sorted((shared / "text").glob("ccnet_en_*.jsonl.gz")):
        en += [json.loads(line)["text"] for line in gzip.open(f, "rt", encoding="utf-8")]
    return {"zh": [s for t in zh for s in re.split(r"(?<=[。！？])", t.replace("\n", "")) if len(s) >= 15],
            "en": [s for t in en for s in re.split(r"(?<=[.!?])\s+", t.replace("\n", " ")) if len(s.split()) >= 6]}


def earlier_docs(shared: Path, pages: list, n: int, seed: int = 3) -> list[dict]:
    """A's input: half of B's distinct pages (extracted as the pipeline does) and
    ``n`` documents of real sentences."""
    from mdfs.pipeline.config import load_config
    from mdfs.pipeline.stages.extract_worker import extract_text, extraction_options
    from mdfs.pipeline.io.payload import decode_html

    opts = extraction_options(load_config(sources=["x=/dev/null"]).extract)
    rows = []
    for i, (url, body, _ctype) in enumerate(pages[::2]):
        text = extract_text(decode_html(body)[0], url, opts)
        if text:
            rows.append({"id": f"page{i}", "text": text, "url": url})
    rng = random.Random(seed)
    sents = _sentences(shared)
    for i in range(n):
        lang = "zh" if i % 2 == 0 else "en"
        body = ("" if lang == "zh" else " ").join(rng.sample(sents[lang], rng.randint(10, 40)))
        rows.append({"id": f"synthetic{i}", "text": body})
    return rows


def shuffle_bytes(run_dir: Path, bands: int = 25, rows: int = 10) -> dict:
    """Bytes the elements of one earlier document take in Beam's default coder."""
    import typing

    import apache_beam as beam
    import pyarrow.dataset as ds

    from mdfs.pipeline.stages.dedup_near import earlier_bands

    coder = beam.coders.registry.get_coder(typing.Any)
    table = ds.dataset(run_dir / "dedup_state", format="parquet").to_table().to_pylist()[:500]
    from mdfs.pipeline.stages.dedup_state import Earlier

    exact, band, info = [], [], []
    for r in table:
        e = Earlier(f"!0:{r['key']}", f"{run_dir}: {r['id']}", r["text_hash"].hex(), r["signature"],
                    (0, 0, r["priority"], r["date"] is None, r["date"] or "", -r["char_count"], r["id"]))
        exact.append(len(coder.encode((e.text_hash, (e.rank, e.key, e.label)))))
        band.append(sum(len(coder.encode(x)) for x in earlier_bands(bands, rows)(e)))
        info.append(len(coder.encode((e.key, (e.rank, e.label, e.signature)))))
    mean = lambda xs: round(sum(xs) / len(xs), 1)  # noqa: E731
    return {"exact_bytes": mean(exact), "band_bytes": mean(band), "info_bytes": mean(info),
            "per_earlier_document": round(mean(exact) + mean(band) + mean(info), 1)}


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*.parquet"))


def measure(shared: Path, docs: int, ratio: int) -> dict:
    from e2e import build_input, gather_pages, timed

    work = Path(tempfile.mkdtemp(prefix="mdfs-bench-incremental-"))
    pages = gather_pages(shared)
    build_input(pages, docs, work / "b")
    base = [sys.executable, "-m", "mdfs.pipeline.commands.cli", "run", "--set", "read.progress_every_s=600"]
    plain = timed(base + ["--output", str(work / "B"), "--source", f"b={work}/b/*.warc.gz"])
    kept_b = json.loads((work / "B" / "funnel.json").read_text())["total"]["kept"]
    rows = earlier_docs(shared, pages, int(kept_b * ratio * 1.15))
    (work / "a.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    earlier = timed(base + ["--output", str(work / "A"), "--source", f"a={work}/a.jsonl", "--set", "sources.a.priority=1"])
    kept_a = json.loads((work / "A" / "funnel.json").read_text())["total"]["kept"]
    against = timed(base + ["--output", str(work / "BA"), "--source", f"b={work}/b/*.warc.gz",
                            "--dedup-against", str(work / "A")])
    funnel = json.loads((work / "BA" / "funnel.json").read_text())
    reasons = funnel["sources"]["b"]["dropped_by_reason"]
    state_rows = json.loads((work / "BA" / "near_dedup.json").read_text()).get("earlier_documents")
    state_bytes = _size(work / "A" / "dedup_state")
    return {"records_b": docs, "kept_b": kept_b, "kept_a": kept_a, "earlier_documents_read": state_rows,
            "a_over_b_kept": round(kept_a / max(kept_b, 1), 2),
            "plain_cpu_s": round(plain["cpu_seconds"], 2), "plain_s": round(plain["seconds"], 2),
            "against_cpu_s": round(against["cpu_seconds"], 2), "against_s": round(against["seconds"], 2),
            "against_over_plain_cpu": round(against["cpu_seconds"] / plain["cpu_seconds"], 3),
            "against_over_plain_wall": round(against["seconds"] / plain["seconds"], 3),
            "plain_peak_rss_mb": round(plain["peak_rss_total_mb"], 1),
            "against_peak_rss_mb": round(against["peak_rss_total_mb"], 1),
            "kept_with_against": funnel["total"]["kept"],
            "dropped_as_earlier_exact": reasons.get("exact_dedup/exact_duplicate", 0),
            "dropped_as_near": reasons.get("near_dedup/near_duplicate", 0),
            "earlier_run_cpu_s": round(earlier["cpu_seconds"], 2),
            "state_bytes_per_kept_doc": round(state_bytes / max(kept_a, 1), 1),
            "state_over_kept_output": round(state_bytes / max(_size(work / "A" / "kept"), 1), 3),
            "shuffle": shuffle_bytes(work / "A")}


def render(res: dict) -> list[str]:
    r, s = res, res["shuffle"]
    return [
        f"`python bench/bench_incremental.py` on {res['date']} ({res['machine']}, 2 cores, Python {res['python']}; "
        "DirectRunner in-process, whole process tree).",
        "",
        "| measure | value | target |", "|---|---:|---|",
        f"| run B ({r['records_b']:,} WARC records, kept {r['kept_b']:,}) with `--dedup-against A` / without, CPU "
        f"| **{r['against_over_plain_cpu']:.2f}x** ({r['against_cpu_s']} / {r['plain_cpu_s']} s) | <= 1.2x |",
        f"| the same, wall time | {r['against_over_plain_wall']:.2f}x ({r['against_s']} / {r['plain_s']} s) | |",
        f"| earlier run A: kept documents (x B's) | {r['kept_a']:,} ({r['a_over_b_kept']}x) | 10x |",
        f"| B with `--dedup-against A`: kept, dropped as duplicates of A (exact / near, with B's own) | "
        f"{r['kept_with_against']:,}: {r['dropped_as_earlier_exact']:,} / {r['dropped_as_near']:,} | |",
        f"| dedup state per kept document (256 permutations) | **{r['state_bytes_per_kept_doc']:.0f} bytes** "
        f"({r['state_over_kept_output']:.2f}x the kept output's bytes) | <= 1.2 KB |",
        f"| shipped per earlier document: exact-dedup element, 25 band keys, signature (only where a band "
        f"is shared) | {s['exact_bytes']:.0f} + {s['band_bytes']:.0f} + {s['info_bytes']:.0f} bytes | |",
        f"| peak RSS, B without / with | {r['plain_peak_rss_mb']} / {r['against_peak_rss_mb']} MB | |",
    ]


def write_doc(res: dict) -> None:
    from results import replace_figures

    replace_figures(REPO / "docs" / "NEAR_DEDUP.md", "bench/bench_incremental.py", render(res))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--docs", type=int, default=2000)
    ap.add_argument("--ratio", type=int, default=10)
    ap.add_argument("--render", action="store_true", help="only rewrite docs/NEAR_DEDUP.md from bench/results.json")
    args = ap.parse_args()
    from results import load, merge_section

    if args.render:
        write_doc(load()["incremental"])
        return 0
    res = {"date": time.strftime("%Y-%m-%d"), "machine": platform.machine(), "python": platform.python_version(),
           **measure(args.shared, args.docs, args.ratio)}
    print(json.dumps(res, indent=2))
    merge_section("incremental", res)
    write_doc(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())

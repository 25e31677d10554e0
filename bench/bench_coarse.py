"""Cost of the coarse stage against extraction, on the same pages, in one run.

  python bench/bench_coarse.py [--shared ../shared/data] [--repeat 3]

Extracts every HTML page (trafilatura, in-process, the pipeline's settings),
then applies all coarse rules (URL rules, normalisation, fastText language ID,
Traditional/Simplified check, line cleaning, the language's document rules)
to each extracted text.  Reports the median over repeats of milliseconds per
document for both, and the ratio (target: coarse <= 10 % of extraction).
Falls back to the bundled samples when ../shared/data is absent.
"""
from __future__ import annotations

import argparse
import gzip
import json
import platform
import statistics
import sys
import time
from pathlib import Path

from mdfs.pipeline.stages.coarse import CoarseRules, source_languages
from mdfs.pipeline.config import SAMPLES_DIR, load_config
from mdfs.pipeline.stages.extract_worker import extract_text, extraction_options
from mdfs.pipeline.io.payload import decode_html
from mdfs.pipeline.records import Document

REPO = Path(__file__).resolve().parents[1]


def load_pages(shared: Path) -> list[tuple[str, str]]:
    pages = []
    if (shared / "html").is_dir():
        for f in sorted((shared / "html").rglob("*.html.gz")):
            pages.append((f.name, decode_html(gzip.decompress(f.read_bytes()))[0]))
    else:
        from warcio.archiveiterator import ArchiveIterator

        for f in sorted(SAMPLES_DIR.glob("*/*.warc.gz")):
            with open(f, "rb") as fh:
                try:
                    for r in ArchiveIterator(fh):
                        if r.rec_type == "response" and "html" in (r.http_headers.get_header("Content-Type") or ""):
                            pages.append((r.rec_headers.get_header("WARC-Target-URI"),
                                          decode_html(r.content_stream().read())[0]))
                except Exception:  # noqa: BLE001 - damaged samples end early
                    pass
    return pages


def measure(shared: Path, repeat: int = 3) -> dict:
    cfg = load_config(sources=["bench=/dev/null"], sets=["source_defaults.languages=[]"])
    opts = extraction_options(cfg.extract)
    pages = load_pages(shared)
    rules = CoarseRules(cfg.coarse, source_languages(cfg))
    texts, ext_runs, coarse_runs = None, [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = [extract_text(html, url, opts) for url, html in pages]
        ext_runs.append((time.perf_counter() - t0) / len(pages))
        texts = [t for t in out if t]
        docs = [Document(key=str(i), id=str(i), source="bench", text=t, url=pages[i][0]) for i, t in enumerate(texts)]
        t0 = time.perf_counter()
        verdicts = [rules.apply(d) for d in docs]
        coarse_runs.append((time.perf_counter() - t0) / len(pages))
    ext, coarse = statistics.median(ext_runs), statistics.median(coarse_runs)
    kept = sum(1 for k, _ in verdicts if k is not None)
    return {"pages": len(pages), "extracted": len(texts), "kept_by_coarse": kept,
            "extract_ms_per_doc": round(ext * 1000, 3), "coarse_ms_per_doc": round(coarse * 1000, 3),
            "coarse_over_extract": round(coarse / ext, 4), "repeats": repeat,
            "python": platform.python_version(), "machine": platform.machine()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    res = measure(args.shared, args.repeat)
    coarse, ext = res["coarse_ms_per_doc"], res["extract_ms_per_doc"]
    print(json.dumps(res, indent=2))
    print(f"coarse rules cost {coarse / ext:.1%} of extraction per document (target <= 10%)")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    sys.exit(main())

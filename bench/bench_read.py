"""Reading speed: the container-aware reader against the previous warcio-based
one, on the same files in the same run (the issue's bound: at most 10 % slower).

    python bench/bench_read.py [--repeats 5] [--copies 40]

The previous reader is taken from git (``--baseline-rev``, default the commit
before the readers package), so the comparison needs a git checkout.  Input:
the bundled Common Crawl sample concatenated ``--copies`` times (one gzip
member per record, as Common Crawl writes), the same records as one gzip
stream, and a JSONL.gz of the bundled news sample repeated.
"""
from __future__ import annotations

import argparse
import gzip
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def load_baseline(rev: str):
    src = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:pipeline/io/readers.py"], check=True,
                         capture_output=True, text=True).stdout
    # the old module called the old payload signatures
    src = src.replace("pl.dechunk(data)", "pl.dechunk(data, 1 << 40)")
    src = src.replace("rec.text, _, _ = pl.decode_html(data)", "rec.text = pl.decode_html(data).text")
    import mdfs.pipeline as pkg

    path = Path(pkg.__file__).parent / "_baseline_readers.py"
    path.write_text(src)
    try:
        spec = importlib.util.spec_from_file_location("mdfs.pipeline._baseline_readers", path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
    finally:
        path.unlink()
    return mod


def run_reader(fn, path: str, new: bool) -> tuple[float, int]:
    """Outputs of one file: the old DoFn's ``process``; the new readers through
    ``Dispatch`` (the shared DoFn's core: the format's reader, then the gate)."""
    from apache_beam.io.fileio import ReadableFile
    from apache_beam.io.filesystem import FileMetadata

    from mdfs.pipeline.io.readers.base import Offered, Span

    size = os.path.getsize(path)
    t0 = time.perf_counter()
    if new:
        n = sum(1 for o in fn.read("b", path, size, Span()) if not isinstance(o, Offered))
    else:
        n = sum(1 for _ in fn.process(ReadableFile(FileMetadata(path, size))))
    return time.perf_counter() - t0, n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--copies", type=int, default=40)
    ap.add_argument("--baseline-rev", default="99523d0")
    a = ap.parse_args()
    from mdfs.pipeline.config import SAMPLES_DIR, load_config
    from mdfs.pipeline.io.readers.dofn import Dispatch
    from mdfs.pipeline.schema import Source

    old = load_baseline(a.baseline_rev)
    cfg = load_config()
    tmp = Path(tempfile.mkdtemp())
    cc = (SAMPLES_DIR / "warc" / "cc-main-2020-34_sample_resiliparse.warc.gz").read_bytes()
    files = {
        "warc.gz, member per record": tmp / "members.warc.gz",
        "warc.gz, one stream": tmp / "stream.warc.gz",
        "jsonl.gz": tmp / "news.jsonl.gz",
    }
    files["warc.gz, member per record"].write_bytes(cc * a.copies)
    files["warc.gz, one stream"].write_bytes(gzip.compress(gzip.decompress(cc) * a.copies))
    news = gzip.decompress((SAMPLES_DIR / "news" / "news_sample.jsonl.gz").read_bytes())
    files["jsonl.gz"].write_bytes(gzip.compress(news * (a.copies * 5)))
    # the baseline revision's DoFn reads mappings; the readers now read the validated sections
    src = {"name": "b", "format": "auto", "fields": {"id": "id", "text": "text", "url": "url", "date": "date"}}
    source = Source.model_validate({**cfg.source_defaults.model_dump(), "languages": [], "paths": ["unused"]})
    print(f"{'input':<30} {'outputs':>8} {'baseline s':>11} {'new s':>8} {'new/baseline':>13}")
    results = []
    for label, path in files.items():
        times = {"old": [], "new": []}
        counts = {}
        for _ in range(a.repeats):  # alternate, medians
            for kind in ("old", "new"):
                if kind == "old":
                    fn = old.ReadFileDoFn(src, cfg.read.model_dump())
                    fn.setup()
                else:
                    fn = Dispatch({"b": source}, cfg.read)
                t, n = run_reader(fn, str(path), kind == "new")
                times[kind].append(t)
                counts[kind] = n
        med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
        print(f"{label:<30} {counts['new']:>8} {med['old']:>11.3f} {med['new']:>8.3f} "
              f"{med['new'] / med['old']:>12.2f}x   (baseline outputs {counts['old']})")
        results.append({"input": label, "bytes": path.stat().st_size, "outputs": counts["new"],
                        "baseline_outputs": counts["old"], "baseline_s": round(med["old"], 4),
                        "new_s": round(med["new"], 4), "ratio": round(med["new"] / med["old"], 3)})
    import json

    (REPO / "bench" / "read_results.json").write_text(json.dumps(
        {"command": f"python bench/bench_read.py --repeats {a.repeats} --copies {a.copies}",
         "baseline_rev": a.baseline_rev, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Which local runner should a user pick?  The same mdfs job on the DirectRunner
(in-process and 2 worker processes) and on Prism (Beam's Go runner, built by
deploy/local-engines.sh), measured in one run: documents/s per CPU-second,
start-up time, peak RSS (whole process tree, and the largest process) at 1x
and 5x input, and at 1,000,000 records dropped at read.

    python bench/bench_engines.py [--docs 1000] [--scale 5] [--dropped 1000000]

Reads ../shared/data (the pages of bench/e2e.py); writes bench/engines_results.json
and the "Local engines" section of docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from e2e import build_input, gather_pages, mdfs_cmd, timed  # noqa: E402

PRISM = REPO / ".engines" / "prism"
ENGINES = {
    "direct, in-process": ["--runner=DirectRunner"],
    "direct, 2 processes": [
        "--runner=DirectRunner",
        "--direct_running_mode=multi_processing",
        "--direct_num_workers=2",
    ],
    "prism (loopback worker)": ["--runner=PrismRunner", f"--prism_location={PRISM}", "--environment_type=LOOPBACK"],
}


def dropped_input(n: int, folder: Path, n_files: int = 8) -> None:
    """n tiny response records that the reader drops (not_html): what most of a
    Common Crawl segment is to a Chinese-only job."""
    folder.mkdir(parents=True, exist_ok=True)
    for f in range(n_files):
        buf = io.BytesIO()
        for i in range(f, n, n_files):
            body = b"\x89PNG" + str(i).encode()
            http = (
                b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )
            head = (
                f"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: http://img.local/{i}.png\r\n"
                f"WARC-Date: 2024-05-01T00:00:00Z\r\nWARC-Record-ID: <urn:uuid:{i:08d}-0000-0000-0000-000000000000>\r\n"
                f"Content-Type: application/http; msgtype=response\r\nContent-Length: {len(http)}\r\n\r\n"
            )
            buf.write(gzip.compress(head.encode() + http + b"\r\n\r\n", compresslevel=1, mtime=0))
        (folder / f"img-{f:02d}.warc.gz").write_bytes(buf.getvalue())


def run(engine: str, data: Path, out: Path) -> dict:
    cmd = [c for c in mdfs_cmd(data, out, 1)] + ENGINES[engine]
    r = timed(cmd)
    funnel = json.loads((out / "funnel.json").read_text())
    r["records"] = funnel["total"]["read"]
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=1000)
    ap.add_argument("--scale", type=int, default=5)
    ap.add_argument("--dropped", type=int, default=1_000_000)
    ap.add_argument("--render", action="store_true", help="rewrite the docs section from the last results")
    a = ap.parse_args()
    if a.render:
        write_doc(json.loads((REPO / "bench" / "engines_results.json").read_text()))
        return
    if not PRISM.exists():
        sys.exit("no Prism binary: run  bash deploy/local-engines.sh  first")
    work = Path(tempfile.mkdtemp(prefix="mdfs-engines-"))
    pages = gather_pages(REPO.parent / "shared" / "data")
    sets = {"start-up (8 records)": 8, "1x": a.docs, f"{a.scale}x": a.docs * a.scale}
    for name, n in sets.items():
        build_input(pages, n, work / name.split()[0])
    dropped_input(a.dropped, work / "dropped")
    results = {
        "command": f"python bench/bench_engines.py --docs {a.docs} --scale {a.scale} --dropped {a.dropped}",
        "date": time.strftime("%Y-%m-%d"),
        "runs": [],
    }
    plan = (
        [(e, "start-up (8 records)") for e in ENGINES]
        + [(e, "1x") for e in ENGINES]
        + [(e, f"{a.scale}x") for e in ENGINES if e != "direct, 2 processes"]
        + [(e, "dropped") for e in ENGINES if e != "direct, 2 processes"]
    )
    for engine, size in plan:
        data = work / size.split()[0]
        r = run(engine, data, work / "out")
        r.update(engine=engine, input=size if size != "dropped" else f"{a.dropped:,} records dropped at read")
        print(json.dumps(r), flush=True)
        results["runs"].append(r)
    (REPO / "bench" / "engines_results.json").write_text(json.dumps(results, indent=2) + "\n")
    write_doc(results)


RECOMMENDATION = [
    "**Which local runner.** For input bigger than the samples on one machine, use the DirectRunner with worker "
    "processes (`--direct_running_mode=multi_processing --direct_num_workers=N`, N = cores): it was the fastest "
    "per wall second here (38 docs/s on 2 cores against 22 in-process) at a steady ~300 MB per worker. Prism "
    "executes the same portable translation a cluster gets, and gave identical output, but on this job it costs "
    "about twice the CPU of the DirectRunner and holds the collections in its own process: 8.4 GB at 5,000 "
    "documents and 9.4 GB at 1,000,000 records dropped at read, against 0.3 and 2.1 GB. Use it to check a "
    "pipeline change against the portable translation before a cluster run, not for volume. Neither spills to "
    "disk: past what one machine's memory holds, run on Flink, Spark or Dataflow (docs/CLUSTER.md).",
]


def write_doc(res: dict) -> None:
    start = {r["engine"]: r["seconds"] for r in res["runs"] if r["input"].startswith("start-up")}
    rows = [
        "| engine | input | records | wall s | CPU s | docs per CPU-s (net of start-up wall) | peak RSS, tree (MB) | "
        "peak RSS, largest process (MB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res["runs"]:
        if r["input"].startswith("start-up"):
            rate = "- (the fixed cost)"
        else:
            net = max(r["seconds"] - start[r["engine"]], 1e-9)
            rate = f"{r['records'] / r['cpu_seconds']:.1f} ({r['records'] / net:.1f}/s wall)"
        rows.append(
            f"| {r['engine']} | {r['input']} | {r['records']:,} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} | "
            f"{rate} | {r['peak_rss_total_mb']:.0f} | {r['peak_rss_worker_mb']:.0f} |"
        )
    section = [
        "## Local engines",
        "",
        f"`{res['command']}` on {res['date']} (2 cores; one run each, engines "
        "alternating per input size; `--render` rewrites this section from bench/engines_results.json). "
        "Prism is Beam's Go runner (`bash deploy/local-engines.sh` builds it); its Python work runs in a "
        "loopback SDK worker. Documents per CPU-second count every process of the run (extractor children "
        "included); the wall rate leaves out each engine's start-up.",
        "",
        *rows,
        "",
        *RECOMMENDATION,
        "",
    ]
    doc = REPO / "docs" / "PERFORMANCE.md"
    text = doc.read_text()
    if "## Local engines" in text:
        head, _, tail = text.partition("## Local engines")
        nxt = tail.find("\n## ")
        text = head + "\n".join(section) + (tail[nxt + 1 :] if nxt >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(section)
    doc.write_text(text)


if __name__ == "__main__":
    main()

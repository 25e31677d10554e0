"""``mdfs sample`` and ``mdfs review``: a person's review of a run's decisions
(docs/REVIEW.md): a stratified sample, the review page, and what the labels say."""
from __future__ import annotations

import argparse
import json
import os
import sys


def sample_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="mdfs sample", allow_abbrev=False,
                                 description="Draw a reproducible stratified sample of a run's decisions "
                                             "(per source x outcome x stage x reason) into RUN_DIR/review/.")
    ap.add_argument("run_dir")
    ap.add_argument("--per-cell", type=int, default=20, help="documents per cell (default 20)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--overwrite", action="store_true", help="replace an earlier sample that has no labels yet")
    return ap


def _sample_problem(run_dir: str, overwrite: bool) -> str | None:
    """An earlier sample is replaced only with --overwrite, and never once labels refer to it."""
    from ..review import REVIEW_DIR

    folder = f"{run_dir.rstrip('/')}/{REVIEW_DIR}"
    if not os.path.exists(f"{folder}/sample.jsonl"):
        return None
    if not overwrite:
        return f"{folder} already holds a sample; pass --overwrite to draw a new one"
    labels = f"{folder}/labels.jsonl"
    if os.path.exists(labels) and os.path.getsize(labels):
        return f"--overwrite would replace the sample that {labels} refers to; move that file away first"
    return None


def cmd_sample(argv: list[str]) -> int:
    from ..review import ReviewError, draw_sample

    a = sample_parser().parse_args(argv)
    if a.per_cell < 1:
        print("mdfs sample: --per-cell must be at least 1", file=sys.stderr)
        return 2
    why = _sample_problem(a.run_dir, a.overwrite)
    if why:
        print(f"mdfs sample: {why}", file=sys.stderr)
        return 2
    try:
        meta = draw_sample(a.run_dir, a.per_cell, a.seed)
    except ReviewError as exc:
        print(f"mdfs sample: {exc}", file=sys.stderr)
        return 2
    print(f"mdfs sample: {meta['items']} documents in {len(meta['cells'])} cells -> "
          f"{a.run_dir.rstrip('/')}/review/sample.jsonl"
          + ("" if meta["candidates"] else " (no candidate store: dropped documents show their excerpt only)"))
    print(f"review them: mdfs review {a.run_dir}")
    return 0


def review_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="mdfs review", allow_abbrev=False,
                                 description="Serve the review page for a run's sample (mdfs sample first), "
                                             "or summarise / export the labels given.")
    ap.add_argument("run_dir")
    ap.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    ap.add_argument("--allow-host", default="", metavar="NAME[,NAME]",
                    help="names/addresses browsers use; needed for a --host beyond loopback (docs/REVIEW.md)")
    ap.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    ap.add_argument("--reviewer", default=os.environ.get("USER") or "reviewer")
    ap.add_argument("--labels", default="high,low,ad", help="class labels, comma-separated (default high,low,ad)")
    ap.add_argument("--summary", action="store_true", help="print per-rule precision, kept label shares, agreement")
    ap.add_argument("--json", action="store_true", help="with --summary: JSON instead of tables")
    ap.add_argument("--export-training", metavar="FILE.jsonl", help="write text/label rows for mdfs train-classifier")
    return ap


def cmd_review(argv: list[str]) -> int:
    from ..review import ReviewError, export_training, load_sample
    from ..review_summary import render_summary, summary

    a = review_parser().parse_args(argv)
    try:
        load_sample(a.run_dir)
        if a.summary:
            s = summary(a.run_dir)
            print(json.dumps(s, indent=2, ensure_ascii=False)) if a.json else render_summary(s)
            return 0
        if a.export_training:
            r = export_training(a.run_dir, a.export_training)
            print(f"mdfs review: {r['rows']} text/label rows -> {r['path']} ({r['conflicting']} items with "
                  f"disagreeing labels and {r['excerpt_only']} excerpt-only items left out)")
            return 0
    except ReviewError as exc:
        print(f"mdfs review: {exc}", file=sys.stderr)
        return 2
    labels = [x.strip() for x in a.labels.split(",") if x.strip()]
    if not labels or len(set(labels)) != len(labels) or len(labels) > 9:
        print("mdfs review: --labels takes 1 to 9 distinct names", file=sys.stderr)
        return 2
    from ..review_app import serve

    try:
        serve(a.run_dir, a.host, a.port, a.reviewer, labels,
              allow=[x.strip() for x in a.allow_host.split(",") if x.strip()])
    except ReviewError as exc:
        print(f"mdfs review: {exc}", file=sys.stderr)
        return 2
    return 0

"""fastText model size against accuracy: hash buckets on the AdDetector set
(read from ../shared, never committed), macro-F1 on its test split.  Appends
the "Model size" section of docs/CLASSIFIER.md.

    python bench/fasttext_size.py [--shared ../shared/data]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from eval_classifiers import prepare  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    a = ap.parse_args()
    from mdfs.classifiers.data import read_jsonl
    from mdfs.classifiers.evaluate import metrics
    from mdfs.classifiers.fasttext_model import FastTextClassifier, default_buckets, train

    work = Path(tempfile.mkdtemp(prefix="mdfs-ftsize-"))
    tr, te = prepare(a.shared, work)
    d, t = read_jsonl(str(tr)), read_jsonl(str(te))
    default = default_buckets(d.texts)
    rows = []
    for bucket in sorted({2_000_000, 200_000, 100_000, default, 20_000}, reverse=True):
        out = work / f"b{bucket}"
        train(d.texts, d.labels, str(out), d.label_names, epoch=25, bucket=bucket)
        m = metrics(t.labels, FastTextClassifier(str(out)).predict_proba(t.texts), d.label_names)
        rows.append((bucket, os.path.getsize(out / "model.bin") / 1e6, m["macro_f1"]))
        print(rows[-1], flush=True)
    ref = rows[0][2]
    lines = ["", "## Model size (fastText)", "",
             f"`python bench/fasttext_size.py`: hash buckets against model size and macro-F1 on the AdDetector "
             f"test split ({len(d.texts):,} training rows). mdfs's default is {default:,} buckets (five per "
             "training row, between 20,000 and 2,000,000); fastText's own 2,000,000 make every model ~500 MB "
             "however small the data.", "",
             "| buckets | model.bin (MB) | macro-F1 | vs 2,000,000 |", "|---:|---:|---:|---:|"]
    lines += [f"| {b:,}{' (default)' if b == default else ''} | {mb:.1f} | {f1:.4f} | {f1 - ref:+.4f} |"
              for b, mb, f1 in rows]
    doc = REPO / "docs" / "CLASSIFIER.md"
    text = doc.read_text()
    if "## Model size (fastText)" in text:
        head, _, tail = text.partition("\n## Model size (fastText)")
        nxt = tail.find("\n## ", 1)
        text = head + (tail[nxt:] if nxt >= 0 else "")
    doc.write_text(text.rstrip("\n") + "\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

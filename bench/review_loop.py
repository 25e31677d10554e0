"""One turn of the review loop (docs/REVIEW.md, "The loop"), measured with a
simulated reviewer who answers from a labelled set: the fastText classifier's
macro-F1 on held-back documents before and after 200 reviewer labels.

  python bench/review_loop.py [--shared /work/shared/data] [--work /tmp/mdfs-loop] [--labels 200]

Data: AdDetector's Chinese advertisement / ordinary paragraphs
(``labeled/zh_ad_addetector``: no licence, read here for evaluation only,
never committed).  Its paragraphs average ~110 characters, under the Chinese
``min_chars`` of 200, so each document is three paragraphs of one class
(``ad`` or ``high``).  Disjoint sets of documents:

* seed: 40 documents (20 per class) train the "before" model;
* corpus: 1,500 documents that ``mdfs run`` filters with the "before" model;
* held back: 600 documents from AdDetector's test split, never shown to anyone.

The loop runs the documented commands: ``mdfs run`` (candidates on, the
before model in the fine stage), ``mdfs sample``, the reviewer's judgements
(``LabelStore``, as the page writes them: the true class as the label, the
verdict from whether the decision matches it), ``mdfs review
--export-training``, ``mdfs train-classifier`` on seed + exported rows, ``mdfs
refilter`` of the same run with the new model, and ``mdfs eval-classifier``
of both models on the held-back documents.  The reviewer's 200 items are
drawn from the sample in three orders (seeds 0, 1, 2); the figures are the
three results and their median.  Prints JSON.
"""
from __future__ import annotations

import argparse
import gzip
import json
import random
import statistics
import subprocess
import sys
from pathlib import Path

PER_DOC = 3  # paragraphs per document


def _mdfs(*args) -> str:
    r = subprocess.run([sys.executable, "-m", "mdfs.pipeline.commands.cli", *map(str, args)], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"mdfs {' '.join(map(str, args[:2]))} failed: {r.stderr.strip()[-800:]}")
    return r.stdout


def _documents(src: Path, split: str, seed: int) -> list[dict]:
    texts = gzip.decompress((src / f"{split}_texts.txt.gz").read_bytes()).decode("utf-8").split("\n")
    labels = (src / f"{split}_labels.txt").read_text().split("\n")
    by_class: dict = {"ad": [], "high": []}
    for t, lab in zip(texts, labels):
        if lab.strip() and t.strip():
            by_class["ad" if lab.strip() == "1" else "high"].append(t.strip())
    docs = []
    rng = random.Random(seed)
    for label, paras in by_class.items():
        rng.shuffle(paras)
        docs += [{"text": "\n".join(paras[i:i + PER_DOC]), "label": label}
                 for i in range(0, len(paras) - PER_DOC + 1, PER_DOC)]
    rng.shuffle(docs)
    return docs


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _macro_f1(model: Path, test: Path, out: Path) -> float:
    _mdfs("eval-classifier", "--model", model, "--test", test, "--output", out)
    return json.loads(out.read_text())["macro_f1"]


def _judge(run: Path, truth: dict, n_labels: int, seed: int) -> int:
    """The simulated reviewer: ``n_labels`` sampled items with full text, in a seeded order."""
    import uuid

    from mdfs.pipeline.commands import review

    (run / "review" / "labels.jsonl").unlink(missing_ok=True)
    items = [it for it in review.load_sample(str(run))[0] if it["text_origin"] != "excerpt"]
    random.Random(seed).shuffle(items)
    store = review.LabelStore(str(run))
    for it in items[:n_labels]:
        label = truth[it["id"]]
        if it["outcome"] == "kept":
            verdict = "correct" if label == "high" else "wrong"
        elif it["stage"] == "fine":
            verdict = "correct" if label == "ad" else "wrong"
        else:  # a rule's drop: this reviewer knows only advertisement or not
            verdict = "unsure"
        store.add({"judgement": str(uuid.uuid4()), "item": it["item"], "verdict": verdict, "label": label,
                   "reviewer": f"simulated-{seed}", "time": "2026-12-07T00:00:00"})
    return min(n_labels, len(items))


def _fine_drops(run: Path) -> int:
    return sum(n for e in json.loads((run / "funnel.json").read_text())["sources"].values()
               for k, n in e["dropped_by_reason"].items() if k.startswith("fine/"))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default="/work/shared/data")
    ap.add_argument("--work", default="/tmp/mdfs-review-loop")
    ap.add_argument("--labels", type=int, default=200)
    a = ap.parse_args()
    src, work = Path(a.shared) / "labeled" / "zh_ad_addetector", Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    train = _documents(src, "train", 0)
    seed_rows = [d for d in train if d["label"] == "ad"][:20] + [d for d in train if d["label"] == "high"][:20]
    rest = [d for d in train if not any(d is s for s in seed_rows)][:1500]
    corpus = [{"id": f"d{i}", "text": d["text"]} for i, d in enumerate(rest)]
    truth = {f"d{i}": d["label"] for i, d in enumerate(rest)}
    held = _write(work / "heldback.jsonl", _documents(src, "test", 1)[:600])
    _write(work / "seed.jsonl", seed_rows)
    _write(work / "corpus.jsonl", corpus)
    ft = ("--kind", "fasttext", "--labels", "high,ad")
    _mdfs("train-classifier", "--train", work / "seed.jsonl", "--output", work / "before", *ft)
    run = work / "run"
    fine = ("--set", "fine.drop_labels={ad: advertisement}", "--set", "fine.thresholds={ad: 0.5}")
    _mdfs("run", "--output", run, "--overwrite", "--source", f"ads={work / 'corpus.jsonl'}",
          "--set", "output.candidates=true", "--set", f"fine.fasttext_model={work / 'before'}", *fine)
    _mdfs("sample", run, "--per-cell", 120, "--seed", 0)
    before = _macro_f1(work / "before", held, work / "before_eval.json")
    results = []
    for seed in (0, 1, 2):
        given = _judge(run, truth, a.labels, seed)
        _mdfs("review", run, "--export-training", work / f"reviewed{seed}.jsonl")
        exported = (work / f"reviewed{seed}.jsonl").read_text()
        (work / f"after{seed}.jsonl").write_text((work / "seed.jsonl").read_text() + exported, encoding="utf-8")
        _mdfs("train-classifier", "--train", work / f"after{seed}.jsonl", "--output", work / f"after{seed}", *ft)
        after = _macro_f1(work / f"after{seed}", held, work / f"after{seed}_eval.json")
        results.append({"reviewer_seed": seed, "labels": given, "exported_rows": len(exported.splitlines()),
                        "macro_f1_after": after})
    refiltered = work / "run_after0"
    _mdfs("refilter", run, "--output", refiltered, "--overwrite", "--set",
          f"fine.fasttext_model={work / 'after0'}", *fine)
    print(json.dumps({"seed_rows": len(seed_rows), "corpus_documents": len(corpus), "heldback_documents": 600,
                      "macro_f1_before": before, "runs": results,
                      "macro_f1_after_median": statistics.median(r["macro_f1_after"] for r in results),
                      "fine_drops_before": _fine_drops(run), "fine_drops_after_refilter": _fine_drops(refiltered),
                      "corpus_ads": sum(v == "ad" for v in truth.values())}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

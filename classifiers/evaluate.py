"""Evaluation of a classifier (BERT directory or fastText model) on labelled
JSONL: precision, recall and F1 per class, macro-F1, the confusion matrix and
a threshold sweep per class (precision/recall of "class vs rest" when the
class is predicted only above a probability threshold)."""
from __future__ import annotations

import time
from pathlib import Path


def load_any(model: str, device: str = "cpu", allow_pickle: bool = False):
    """A scorer ``texts -> [dict label -> prob]`` and its label list, for
    either kind of model directory."""
    from .integrity import read_meta, say_unverified

    path = Path(model)
    meta = path / "labels.json" if path.is_dir() else path.parent / "labels.json"
    if (path / "model.bin").is_file() or path.suffix in (".bin", ".ftz") or (
            meta.is_file() and read_meta(meta).get("kind") == "fasttext"):
        from .fasttext_model import FastTextClassifier

        clf = FastTextClassifier(str(path))
        if not clf.verified:
            say_unverified("model", path)
        return "fasttext", clf.predict_proba, clf.labels
    from . import bert

    if not path.exists():
        raise bert.ModelError(f"model not found: {path}")
    if path.is_dir() and not bert.verify_weights(bert.check_model_dir(str(path), allow_pickle)):
        say_unverified("model", path)
    tok, m, labels = bert.load(str(path), bert.resolve_device(device), allow_pickle)
    return "bert", (lambda texts: bert.score(tok, m, labels, texts)), labels


def metrics(gold: list[str], probs: list[dict], labels: list[str],
            thresholds=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)) -> dict:
    pred = [max(p, key=p.get) for p in probs]
    idx = {l: i for i, l in enumerate(labels)}
    cm = [[0] * len(labels) for _ in labels]
    for g, p in zip(gold, pred):
        cm[idx[g]][idx[p]] += 1
    per = {}
    for l in labels:
        tp = sum(1 for g, p in zip(gold, pred) if g == l and p == l)
        fp = sum(1 for g, p in zip(gold, pred) if g != l and p == l)
        fn = sum(1 for g, p in zip(gold, pred) if g == l and p != l)
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        per[l] = {"precision": round(prec, 4), "recall": round(rec, 4), "f1": round(f1, 4),
                  "support": sum(1 for g in gold if g == l)}
    sweep = {}
    for l in labels:
        rows = []
        for t in thresholds:
            tp = sum(1 for g, p in zip(gold, probs) if p[l] >= t and g == l)
            fp = sum(1 for g, p in zip(gold, probs) if p[l] >= t and g != l)
            fn = sum(1 for g, p in zip(gold, probs) if p[l] < t and g == l)
            rows.append({"threshold": t, "precision": round(tp / (tp + fp), 4) if tp + fp else None,
                         "recall": round(tp / (tp + fn), 4) if tp + fn else 0.0})
        sweep[l] = rows
    return {"rows": len(gold), "labels": labels, "accuracy": round(sum(g == p for g, p in zip(gold, pred)) / len(gold), 4),
            "macro_f1": round(sum(v["f1"] for v in per.values()) / len(per), 4), "per_class": per,
            "confusion_matrix": {"labels": labels, "rows_gold_cols_pred": cm}, "threshold_sweep": sweep}


def evaluate(model: str, test_file: str, device: str = "cpu", allow_pickle: bool = False, progress=None,
             chunk: int = 256) -> dict:
    """``progress(description, total)`` -> ``advance(n)``: a progress bar over the test rows."""
    from .data import read_jsonl

    kind, scorer, labels = load_any(model, device, allow_pickle)
    data = read_jsonl(test_file, label_names=labels)
    advance = progress("scoring", len(data.texts)) if progress else (lambda n=1: None)
    t0 = time.perf_counter()
    probs = []
    for i in range(0, len(data.texts), chunk):  # in chunks, so the bar moves (batching within each is the scorer's)
        probs += scorer(data.texts[i:i + chunk])
        advance(len(data.texts[i:i + chunk]))
    elapsed = time.perf_counter() - t0
    res = metrics(data.labels, probs, labels)
    res.update({"model": model, "kind": kind, "test": test_file, "docs_per_s": round(len(data.texts) / elapsed, 1)})
    return res


def format_report(res: dict) -> str:
    lines = [f"{res['kind']} model {res['model']} on {res['test']}: {res['rows']} rows, "
             f"accuracy {res['accuracy']:.4f}, macro-F1 {res['macro_f1']:.4f} ({res['docs_per_s']} docs/s)", "",
             f"{'label':<14}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
    for l, v in res["per_class"].items():
        lines.append(f"{l:<14}{v['precision']:>10.4f}{v['recall']:>10.4f}{v['f1']:>10.4f}{v['support']:>10}")
    labels = res["confusion_matrix"]["labels"]
    lines += ["", "confusion matrix (rows gold, columns predicted): " + " ".join(labels)]
    for l, row in zip(labels, res["confusion_matrix"]["rows_gold_cols_pred"]):
        lines.append(f"  {l:<12}" + " ".join(f"{n:>8}" for n in row))
    lines += ["", "threshold sweep (class vs rest): threshold precision/recall"]
    for l, rows in res["threshold_sweep"].items():
        lines.append(f"  {l:<12}" + "  ".join(f"{r['threshold']:.2f}:{r['precision'] if r['precision'] is not None else '-'}"
                                               f"/{r['recall']}" for r in rows))
    return "\n".join(lines)

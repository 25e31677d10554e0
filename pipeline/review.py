"""Human screening (Yuan 1.0's 人工筛查): stratified samples of a run's
decisions, durable labels, and what the labels say.

* ``draw_sample``: per source x outcome x stage x reason (kept documents per
  source x score band), the ``per_cell`` members with the smallest
  ``blake2b(seed, source, id)``: reproducible, streaming (one pass, a bounded
  heap per cell), and each cell's population is kept for weighting.  Full
  texts come from the kept output, or for dropped documents from the
  candidate store (``output.candidates``), with the lines line-cleaning
  removed; a run without candidates has the stored excerpt only, and the
  item says so.  Written to ``RUN_DIR/review/sample.jsonl`` and
  ``review/sample.json``.
* ``LabelStore``: ``review/labels.jsonl``, append-only, one JSON object per
  judgement, flushed and fsync'ed before the reply, deduplicated by its
  judgement id; the latest judgement of a reviewer on an item counts.
* ``summary``: per stage x reason the precision of the drop
  (correct / (correct + wrong)) with a 95 % Wilson interval, the class-label
  shares of the kept corpus weighted back to the population, and Cohen's
  kappa between reviewers on the items both judged.
* ``export_training``: ``text``/``label`` rows for ``mdfs train-classifier``.
"""
from __future__ import annotations

import hashlib
import heapq
import json
import math
import os
import threading
import time
from collections import defaultdict

REVIEW_DIR = "review"
VERDICTS = ("correct", "wrong", "unsure")
DEFAULT_LABELS = ("high", "low", "ad")
SCORE_BANDS = ((0.1, "p<0.1"), (0.3, "0.1<=p<0.3"), (0.5, "0.3<=p<0.5"), (1.01, "p>=0.5"))


class ReviewError(ValueError):
    """A run that cannot be sampled or reviewed, said in one line."""


def _root(run_dir: str) -> str:
    return run_dir.rstrip("/")


def _dataset(path: str):
    import pyarrow.dataset as ds

    return ds.dataset(path, format="parquet") if os.path.isdir(path) and any(
        f.endswith(".parquet") for f in os.listdir(path)) else None


def _order(seed: int, source: str, ident: str) -> int:
    h = hashlib.blake2b(f"{seed}\x00{source}\x00{ident}".encode("utf-8", "surrogatepass"), digest_size=8)
    return int.from_bytes(h.digest(), "big")


def score_band(scores) -> str:
    """Kept documents are stratified by the highest drop-label-like probability they carry."""
    probs = [s["prob"] for s in scores or [] if s.get("prob") is not None]
    if not probs:
        return "unscored"
    top = max(probs)
    return next(name for limit, name in SCORE_BANDS if top < limit)


class _Cells:
    """Bottom-k sample per cell, plus each cell's population."""

    def __init__(self, per_cell: int, seed: int):
        self.per_cell, self.seed = per_cell, seed
        self.heaps: dict = defaultdict(list)
        self.population: dict = defaultdict(int)

    def offer(self, cell: tuple, row: dict) -> None:
        self.population[cell] += 1
        rank = -_order(self.seed, row["source"], row["id"])  # max-heap on the order: keep the smallest
        heap = self.heaps[cell]
        if len(heap) < self.per_cell:
            heapq.heappush(heap, (rank, row["id"], row))
        elif rank > heap[0][0]:
            heapq.heapreplace(heap, (rank, row["id"], row))

    def members(self):
        for cell in sorted(self.heaps):
            for _rank, _id, row in sorted(self.heaps[cell], key=lambda x: (-x[0], x[1])):
                yield cell, row


def _signals(rows) -> dict:
    return {r["name"]: r["value"] for r in rows or []}


def draw_sample(run_dir: str, per_cell: int = 20, seed: int = 0) -> dict:
    """Draw the sample into ``RUN_DIR/review/``; returns ``sample.json``'s content."""
    root = _root(run_dir)
    if not os.path.exists(f"{root}/funnel.json"):
        raise ReviewError(f"{run_dir}: not an mdfs run directory (no funnel.json)")
    cells = _Cells(per_cell, seed)
    kept, dropped = _dataset(f"{root}/kept"), _dataset(f"{root}/dropped")
    if kept is not None:
        for batch in kept.to_batches(columns=["id", "source", "url", "scores", "signals", "language"]):
            for row in batch.to_pylist():
                cells.offer((row["source"], "kept", "kept", score_band(row["scores"])), row)
    if dropped is not None:
        cols = ["id", "source", "url", "stage", "reason", "detail", "excerpt", "signals", "char_count"]
        for batch in dropped.to_batches(columns=cols):
            for row in batch.to_pylist():
                cells.offer((row["source"], "dropped", row["stage"], row["reason"]), row)
    chosen = list(cells.members())
    texts = _full_texts(root, chosen)
    items = []
    for (source, outcome, stage, reason), row in chosen:
        full = texts.get((source, row["id"]))
        if outcome == "kept":
            text, origin = full["text"], "kept"
        elif full and full.get("candidate"):
            text, origin = full["candidate"], "candidates"
        else:
            text, origin = row.get("excerpt") or "", "excerpt"
        items.append({
            "item": f"{source}/{row['id']}", "id": row["id"], "source": source, "outcome": outcome, "stage": stage,
            "reason": reason, "detail": row.get("detail"), "url": row.get("url"), "text": text,
            "text_origin": origin, "char_count": row.get("char_count") or len(text),
            "removed_lines": (full or {}).get("removed_lines", []), "signals": _signals(row.get("signals")),
            "cell": [source, outcome, stage, reason],
            "cell_population": cells.population[(source, outcome, stage, reason)]})
    meta = {"run": os.path.abspath(root), "per_cell": per_cell, "seed": seed,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "items": len(items),
            "candidates": _dataset(f"{root}/candidates/documents") is not None,
            "cells": [{"cell": list(c), "population": n, "sampled": min(n, per_cell)}
                      for c, n in sorted(cells.population.items())]}
    os.makedirs(f"{root}/{REVIEW_DIR}", exist_ok=True)
    tmp = f"{root}/{REVIEW_DIR}/sample.jsonl.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        for it in items:
            fh.write(json.dumps(it, ensure_ascii=False) + "\n")
    os.replace(tmp, f"{root}/{REVIEW_DIR}/sample.jsonl")
    with open(f"{root}/{REVIEW_DIR}/sample.json", "w", encoding="utf-8") as fh:
        json.dump(meta, fh, indent=2, ensure_ascii=False)
    return meta


def _full_texts(root: str, chosen: list) -> dict:
    """(source, id) -> {text (kept), candidate (candidate store text), removed_lines} of the sampled rows."""
    import pyarrow.compute as pc

    wanted = {(cell[0], row["id"]) for cell, row in chosen}
    ids = sorted({i for _, i in wanted})
    out: dict = {}
    if not ids:
        return out
    kept = _dataset(f"{root}/kept")
    if kept is not None:
        for row in kept.to_table(columns=["id", "source", "text"], filter=pc.field("id").isin(ids)).to_pylist():
            if (row["source"], row["id"]) in wanted:
                out.setdefault((row["source"], row["id"]), {})["text"] = row["text"]
    cand = _dataset(f"{root}/candidates/documents")
    if cand is not None:
        for row in cand.to_table(columns=["id", "source", "text", "removed_lines"],
                                 filter=pc.field("id").isin(ids)).to_pylist():
            if (row["source"], row["id"]) in wanted:
                entry = out.setdefault((row["source"], row["id"]), {})
                entry["candidate"] = row["text"]
                entry["removed_lines"] = [[r["kind"], r["line"]] for r in row["removed_lines"] or []]
    return out


def load_sample(run_dir: str) -> tuple[list[dict], dict]:
    root = _root(run_dir)
    path = f"{root}/{REVIEW_DIR}/sample.jsonl"
    if not os.path.exists(path):
        raise ReviewError(f"{run_dir}: no sample to review; draw one first: mdfs sample {run_dir}")
    with open(path, encoding="utf-8") as fh:
        items = [json.loads(line) for line in fh if line.strip()]
    with open(f"{root}/{REVIEW_DIR}/sample.json", encoding="utf-8") as fh:
        return items, json.load(fh)


# --- labels -------------------------------------------------------------------------------

class LabelStore:
    """``review/labels.jsonl``: append-only, one judgement per line, durable
    before ``add`` returns; a judgement id seen before is not written again."""

    def __init__(self, run_dir: str):
        self.path = f"{_root(run_dir)}/{REVIEW_DIR}/labels.jsonl"
        self._lock = threading.Lock()
        self._seen = {j["judgement"] for j in read_labels(run_dir)}

    def add(self, judgement: dict) -> bool:
        """Write one judgement; False when its id was written before."""
        line = json.dumps(judgement, ensure_ascii=False) + "\n"
        with self._lock:
            if judgement["judgement"] in self._seen:
                return False
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
            self._seen.add(judgement["judgement"])
            return True


def read_labels(run_dir: str) -> list[dict]:
    """Every judgement, each judgement id once (a torn last line, from a crash, is skipped)."""
    path = f"{_root(run_dir)}/{REVIEW_DIR}/labels.jsonl"
    out, seen = [], set()
    if not os.path.exists(path):
        return out
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                j = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(j, dict) and j.get("judgement") and j["judgement"] not in seen:
                seen.add(j["judgement"])
                out.append(j)
    return out


def latest(judgements: list[dict]) -> dict:
    """(reviewer, item) -> that reviewer's latest judgement of the item (file order breaks time ties)."""
    out: dict = {}
    for n, j in enumerate(judgements):
        k = (j["reviewer"], j["item"])
        if k not in out or (j["time"], n) >= (out[k][0]["time"], out[k][1]):
            out[k] = (j, n)
    return {k: v[0] for k, v in out.items()}


# --- what the labels say ------------------------------------------------------------------

def wilson(successes: int, n: int, z: float = 1.959964) -> tuple[float, float] | None:
    """95 % Wilson score interval of a proportion."""
    if n == 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def cohen_kappa(pairs: list[tuple[str, str]]) -> float | None:
    """Cohen's kappa of two raters' categories over the same items."""
    n = len(pairs)
    if n == 0:
        return None
    cats = sorted({c for p in pairs for c in p})
    po = sum(a == b for a, b in pairs) / n
    pe = sum((sum(a == c for a, _ in pairs) / n) * (sum(b == c for _, b in pairs) / n) for c in cats)
    return 1.0 if pe == 1 else (po - pe) / (1 - pe)


def summary(run_dir: str) -> dict:
    items, meta = load_sample(run_dir)
    by_item = {it["item"]: it for it in items}
    judged = latest(read_labels(run_dir))
    drops: dict = defaultdict(lambda: {"judged": 0, "correct": 0, "wrong": 0, "unsure": 0})
    for (_reviewer, item), j in judged.items():
        it = by_item.get(item)
        if it is None or it["outcome"] != "dropped":
            continue
        d = drops[f"{it['stage']}/{it['reason']}"]
        d["judged"] += 1
        d[j["verdict"]] += 1
    for d in drops.values():
        decided = d["correct"] + d["wrong"]
        d["precision"] = d["correct"] / decided if decided else None
        ci = wilson(d["correct"], decided)
        d["ci95"] = list(ci) if ci else None
    # kept: class-label shares per cell, weighted by the cell's population
    population = {tuple(c["cell"]): c["population"] for c in meta["cells"]}
    kept_pop = sum(n for c, n in population.items() if c[1] == "kept")
    per_cell: dict = defaultdict(lambda: defaultdict(int))
    for (_reviewer, item), j in judged.items():
        it = by_item.get(item)
        if it and it["outcome"] == "kept" and j.get("label"):
            per_cell[tuple(it["cell"])][j["label"]] += 1
    shares: dict = defaultdict(float)
    covered = 0
    for cell, counts in per_cell.items():
        total = sum(counts.values())
        covered += population[cell]
        for label, n in counts.items():
            shares[label] += population[cell] * n / total
    kept_labels = {label: v / covered for label, v in sorted(shares.items())} if covered else {}
    # agreement: every pair of reviewers over the items both judged
    by_reviewer: dict = defaultdict(dict)
    for (reviewer, item), j in judged.items():
        by_reviewer[reviewer][item] = j
    agreement = []
    names = sorted(by_reviewer)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            common = sorted(set(by_reviewer[a]) & set(by_reviewer[b]))
            if not common:
                continue
            verdicts = [(by_reviewer[a][k]["verdict"], by_reviewer[b][k]["verdict"]) for k in common]
            labels = [(by_reviewer[a][k].get("label"), by_reviewer[b][k].get("label")) for k in common
                      if by_reviewer[a][k].get("label") and by_reviewer[b][k].get("label")]
            agreement.append({"reviewers": [a, b], "items": len(common), "kappa_verdict": cohen_kappa(verdicts),
                              "label_items": len(labels), "kappa_label": cohen_kappa(labels)})
    return {"run": meta["run"], "sample_items": len(items), "judgements": len(judged),
            "reviewers": names, "drops": dict(sorted(drops.items())),
            "kept_label_shares": kept_labels, "kept_population": kept_pop,
            "kept_population_covered": covered, "agreement": agreement}


def render_summary(s: dict, console=None) -> None:
    from rich.table import Table

    from .funnel import terminal_console

    console = console or terminal_console()
    t = Table(title=f"precision of drops ({s['judgements']} judgements by {len(s['reviewers'])} reviewer(s))",
              title_justify="left")
    for col, just in (("stage/reason", "left"), ("judged", "right"), ("correct", "right"), ("wrong", "right"),
                      ("unsure", "right"), ("precision", "right"), ("95% CI", "right")):
        t.add_column(col, justify=just, overflow="fold")
    for key, d in s["drops"].items():
        t.add_row(key, str(d["judged"]), str(d["correct"]), str(d["wrong"]), str(d["unsure"]),
                  "-" if d["precision"] is None else f"{d['precision']:.2f}",
                  "-" if d["ci95"] is None else f"{d['ci95'][0]:.2f}-{d['ci95'][1]:.2f}")
    t.caption = "precision = correct / (correct + wrong); unsure is reported, not counted; Wilson interval"
    t.caption_justify = "left"
    console.print(t)
    if s["kept_label_shares"]:
        console.print("kept corpus by class label (weighted to the population): "
                      + ", ".join(f"{k} {v:.1%}" for k, v in s["kept_label_shares"].items()))
    for a in s["agreement"]:
        kv = "-" if a["kappa_verdict"] is None else f"{a['kappa_verdict']:.2f}"
        kl = "-" if a["kappa_label"] is None else f"{a['kappa_label']:.2f}"
        console.print(f"agreement {a['reviewers'][0]} / {a['reviewers'][1]}: {a['items']} items, "
                      f"Cohen's kappa {kv} (verdicts), {kl} (labels, {a['label_items']} items)")


def summary_markdown(s: dict) -> list[str]:
    L = ["", "## Human review", "",
         f"{s['judgements']} judgements by {', '.join(s['reviewers'])} on a sample of {s['sample_items']} "
         "(`mdfs review --summary`).", "",
         "| stage/reason | judged | correct | wrong | unsure | precision | 95 % CI |", "|---|---:|---:|---:|---:|---:|---|"]
    for key, d in s["drops"].items():
        L.append(f"| {key} | {d['judged']} | {d['correct']} | {d['wrong']} | {d['unsure']} | "
                 + ("-" if d["precision"] is None else f"{d['precision']:.2f}") + " | "
                 + ("-" if d["ci95"] is None else f"{d['ci95'][0]:.2f}-{d['ci95'][1]:.2f}") + " |")
    if s["kept_label_shares"]:
        L += ["", "Kept corpus by class label, weighted to the population: "
              + ", ".join(f"{k} {v:.1%}" for k, v in s["kept_label_shares"].items()) + "."]
    return L


def export_training(run_dir: str, path: str) -> dict:
    """``text``/``label`` JSONL rows from the class labels given (latest per reviewer and item;
    items whose reviewers disagree on the label are left out, and so are excerpt-only items)."""
    items, _meta = load_sample(run_dir)
    by_item = {it["item"]: it for it in items}
    labels: dict = defaultdict(set)
    for (_reviewer, item), j in latest(read_labels(run_dir)).items():
        if j.get("label"):
            labels[item].add(j["label"])
    rows, conflicts, excerpt_only = [], 0, 0
    for item, found in sorted(labels.items()):
        it = by_item.get(item)
        if it is None:
            continue
        if len(found) > 1:
            conflicts += 1
            continue
        if it["text_origin"] == "excerpt":
            excerpt_only += 1
            continue
        rows.append({"text": it["text"], "label": next(iter(found)), "id": it["id"], "source": it["source"]})
    with open(path, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    return {"rows": len(rows), "conflicting": conflicts, "excerpt_only": excerpt_only, "path": path}

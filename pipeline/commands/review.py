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
* ``summary`` (``review_summary``): what the labels say.
* ``export_training``: ``text``/``label`` rows for ``mdfs train-classifier``.
"""
from __future__ import annotations

import hashlib
import heapq
import json
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
    before ``add`` returns; a judgement id seen before is not written again.

    A crash mid-write leaves a last line without its newline.  Appending the
    next judgement straight after it would glue the two into one unreadable
    line, losing a judgement the page was told was saved; so every append
    first looks at the file's last byte and, when it is not a newline, ends
    the fragment with one (the fragment stays, as one malformed line that
    reading skips and counts).  The check and the append hold an exclusive
    ``flock`` on the file, so two servers on one run (two reviewers) cannot
    interleave."""

    def __init__(self, run_dir: str):
        self.path = f"{_root(run_dir)}/{REVIEW_DIR}/labels.jsonl"
        self._lock = threading.Lock()
        self._seen = {j["judgement"] for j in read_labels(run_dir)}
        self.torn_lines_ended = 0

    def add(self, judgement: dict) -> bool:
        """Write one judgement; False when its id was written before."""
        data = (json.dumps(judgement, ensure_ascii=False) + "\n").encode("utf-8", "surrogatepass")
        with self._lock:
            if judgement["judgement"] in self._seen:
                return False
            self.torn_lines_ended += _append_line(self.path, data)
            self._seen.add(judgement["judgement"])
            return True


def _append_line(path: str, data: bytes) -> int:
    """Append ``data`` (one line) durably; returns 1 when a torn last line had to be ended first."""
    import fcntl

    created = not os.path.exists(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
        view = memoryview(b"\n" + data if torn else data)
        while view:  # os.write may write less than asked
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)  # also releases the flock
    if created:  # the new directory entry must survive a power cut too
        dfd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    return int(torn)


def _valid(j) -> bool:
    """A judgement line mdfs could have written: the fields it reads, of the types it wrote."""
    return (isinstance(j, dict) and all(isinstance(j.get(k), str) and j[k] for k in ("judgement", "item", "reviewer"))
            and j.get("verdict") in VERDICTS and isinstance(j.get("time"), str)
            and (j.get("label") is None or (isinstance(j["label"], str) and j["label"]))
            and all(j.get(k) is None or isinstance(j[k], str) for k in ("id", "source", "outcome", "stage", "reason")))


def scan_labels(run_dir: str) -> tuple[list[dict], int]:
    """(every well-formed judgement, each judgement id once; how many lines were skipped as
    malformed: a torn line from a crash, a line edited by hand into the wrong shape)."""
    path = f"{_root(run_dir)}/{REVIEW_DIR}/labels.jsonl"
    out, seen, bad = [], set(), 0
    if not os.path.exists(path):
        return out, bad
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                j = json.loads(line)
            except (ValueError, RecursionError):
                j = None
            if not _valid(j):
                bad += 1
            elif j["judgement"] not in seen:
                seen.add(j["judgement"])
                out.append(j)
    return out, bad


def read_labels(run_dir: str) -> list[dict]:
    """Every well-formed judgement, each judgement id once (malformed lines are skipped)."""
    return scan_labels(run_dir)[0]


def latest(judgements: list[dict]) -> dict:
    """(reviewer, item) -> that reviewer's latest judgement of the item (file order breaks time ties)."""
    out: dict = {}
    for n, j in enumerate(judgements):
        k = (j["reviewer"], j["item"])
        if k not in out or (j["time"], n) >= (out[k][0]["time"], out[k][1]):
            out[k] = (j, n)
    return {k: v[0] for k, v in out.items()}


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

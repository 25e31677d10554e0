"""What the reviewers' labels say (``mdfs review --summary``, the report's
"Human review" section).

* Dropped documents, per stage x reason: the precision of the drop
  (correct / (correct + wrong)) with a 95 % Wilson interval, beside how many
  documents the rule dropped in the run; rules whose whole interval lies
  below ``review.min_precision`` are listed.
* Kept documents, per score band: the same counts, where "correct" means
  rightly kept; and the class-label shares of the kept corpus, each cell's
  shares weighted by its population, with the population the labels cover.
* Cohen's kappa between every pair of reviewers on the items both judged.
* Judgement lines that are malformed (a torn line from a crash, a hand edit)
  or name an item not in the sample are skipped and counted.
"""
from __future__ import annotations

import math
import os
from collections import defaultdict

from .review import latest, load_sample, scan_labels

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


def min_precision_of(run_dir: str) -> float:
    """``review.min_precision`` from the run's config.yaml (a run made before the key existed: the default)."""
    import yaml

    path = f"{run_dir.rstrip('/')}/config.yaml"
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            cfg = yaml.safe_load(fh) or {}
        value = (cfg.get("review") or {}).get("min_precision") if isinstance(cfg, dict) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    from ..config import load_defaults

    return float(load_defaults()["review"]["min_precision"])  # defaults.yaml says why


def _tally(groups: dict) -> dict:
    for d in groups.values():
        decided = d["correct"] + d["wrong"]
        d["precision"] = d["correct"] / decided if decided else None
        ci = wilson(d["correct"], decided)
        d["ci95"] = list(ci) if ci else None
    return dict(sorted(groups.items()))


def _counts() -> dict:
    return {"judged": 0, "correct": 0, "wrong": 0, "unsure": 0}


def _verdicts(judged: dict, by_item: dict, population: dict) -> tuple[dict, dict]:
    """(drops per stage/reason, kept per score band), each with counts, precision and interval."""
    drops: dict = defaultdict(_counts)
    kept: dict = defaultdict(_counts)
    for (_reviewer, item), j in judged.items():
        it = by_item[item]
        d = drops[f"{it['stage']}/{it['reason']}"] if it["outcome"] == "dropped" else kept[it["reason"]]
        d["judged"] += 1
        d[j["verdict"]] += 1
    for cell, n in population.items():  # how many documents each rule dropped (each band holds) in the run
        group = drops if cell[1] == "dropped" else kept
        key = f"{cell[2]}/{cell[3]}" if cell[1] == "dropped" else cell[3]
        if key in group:
            group[key]["in_run"] = group[key].get("in_run", 0) + n
    return _tally(drops), _tally(kept)


def _label_shares(judged: dict, by_item: dict, population: dict) -> tuple[dict, int]:
    """Kept corpus by class label, each labelled cell weighted by its population; (shares, population covered)."""
    per_cell: dict = defaultdict(lambda: defaultdict(int))
    for (_reviewer, item), j in judged.items():
        it = by_item[item]
        if it["outcome"] == "kept" and j.get("label"):
            per_cell[tuple(it["cell"])][j["label"]] += 1
    shares: dict = defaultdict(float)
    covered = 0
    for cell, counts in per_cell.items():
        total = sum(counts.values())
        covered += population[cell]
        for label, n in counts.items():
            shares[label] += population[cell] * n / total
    return ({label: v / covered for label, v in sorted(shares.items())} if covered else {}), covered


def _agreement(judged: dict) -> tuple[list, list]:
    by_reviewer: dict = defaultdict(dict)
    for (reviewer, item), j in judged.items():
        by_reviewer[reviewer][item] = j
    names, out = sorted(by_reviewer), []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            common = sorted(set(by_reviewer[a]) & set(by_reviewer[b]))
            if not common:
                continue
            verdicts = [(by_reviewer[a][k]["verdict"], by_reviewer[b][k]["verdict"]) for k in common]
            labels = [(by_reviewer[a][k].get("label"), by_reviewer[b][k].get("label")) for k in common
                      if by_reviewer[a][k].get("label") and by_reviewer[b][k].get("label")]
            out.append({"reviewers": [a, b], "items": len(common), "kappa_verdict": cohen_kappa(verdicts),
                        "label_items": len(labels), "kappa_label": cohen_kappa(labels)})
    return names, out


def summary(run_dir: str, min_precision: float | None = None) -> dict:
    items, meta = load_sample(run_dir)
    by_item = {it["item"]: it for it in items}
    judgements, malformed = scan_labels(run_dir)
    every = latest(judgements)
    judged = {k: j for k, j in every.items() if j["item"] in by_item}
    population = {tuple(c["cell"]): c["population"] for c in meta["cells"]}
    drops, kept = _verdicts(judged, by_item, population)
    shares, covered = _label_shares(judged, by_item, population)
    names, agreement = _agreement(judged)
    floor = min_precision_of(run_dir) if min_precision is None else min_precision
    return {"run": meta["run"], "sample_items": len(items), "judgements": len(judged),
            "reviewers": names, "drops": drops, "kept": kept,
            "kept_label_shares": shares, "kept_population": sum(n for c, n in population.items() if c[1] == "kept"),
            "kept_population_covered": covered, "agreement": agreement,
            "malformed_lines": malformed, "unknown_items": len(every) - len(judged),
            "min_precision": floor,
            "below_min_precision": [k for k, d in drops.items() if d["ci95"] and d["ci95"][1] < floor]}


def _p(d: dict) -> str:
    return "-" if d["precision"] is None else f"{d['precision']:.2f}"


def _ci(d: dict) -> str:
    return "-" if d["ci95"] is None else f"{d['ci95'][0]:.2f}-{d['ci95'][1]:.2f}"


def coverage_line(s: dict) -> str:
    return (f"labels cover {s['kept_population_covered']:,} of {s['kept_population']:,} kept documents "
            "(the population of the score bands with a class label; bands nobody labelled are left out)")


def notes(s: dict) -> list[str]:
    """The plain-text lines below the tables (terminal and markdown alike)."""
    out = []
    if s["kept_label_shares"]:
        out.append("kept corpus by class label (weighted to the population): "
                   + ", ".join(f"{k} {v:.1%}" for k, v in s["kept_label_shares"].items()) + "; " + coverage_line(s))
    for a in s["agreement"]:
        kv = "-" if a["kappa_verdict"] is None else f"{a['kappa_verdict']:.2f}"
        kl = "-" if a["kappa_label"] is None else f"{a['kappa_label']:.2f}"
        out.append(f"agreement {a['reviewers'][0]} / {a['reviewers'][1]}: {a['items']} items, "
                   f"Cohen's kappa {kv} (verdicts), {kl} (labels, {a['label_items']} items)")
    if s["below_min_precision"]:
        out.append(f"rules whose 95% interval lies below precision {s['min_precision']:.2f} "
                   f"(review.min_precision): {', '.join(s['below_min_precision'])}")
    if s["malformed_lines"] or s["unknown_items"]:
        out.append(f"skipped: {s['malformed_lines']} malformed line(s) in labels.jsonl, "
                   f"{s['unknown_items']} judgement(s) of items not in the sample")
    return out


def _columns(first: str) -> list[str]:
    return [first, "in run", "judged", "correct", "wrong", "unsure", "precision", "95% CI"]


def _row(key: str, d: dict) -> list[str]:
    return [key, f"{d.get('in_run', 0):,}", str(d["judged"]), str(d["correct"]), str(d["wrong"]),
            str(d["unsure"]), _p(d), _ci(d)]


def render_summary(s: dict, console=None) -> None:
    from rich.table import Table

    from ..funnel import terminal_console

    console = console or terminal_console()
    for title, first, rows, caption in (
            (f"precision of drops ({s['judgements']} judgements by {len(s['reviewers'])} reviewer(s))",
             "stage/reason", s["drops"], "in run = documents the rule dropped in the run; precision = correct / "
             "(correct + wrong): correct = rightly dropped; unsure is reported, not counted; Wilson interval"),
            ("kept documents, per score band", "score band", s["kept"],
             "in run = kept documents in the band; correct = rightly kept, wrong = should have been dropped")):
        if not rows:
            continue
        t = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
        for n, col in enumerate(_columns(first)):
            t.add_column(col, justify="left" if n == 0 else "right", overflow="fold")
        for key, d in rows.items():
            t.add_row(*_row(key, d))
        console.print(t)
    for line in notes(s):
        console.print(line, markup=False, highlight=False)


def summary_markdown(s: dict) -> list[str]:
    L = ["", "## Human review", "",
         f"{s['judgements']} judgements by {', '.join(s['reviewers'])} on a sample of {s['sample_items']} "
         "(`mdfs review --summary`).  Precision = correct / (correct + wrong); \"in run\" = documents the rule "
         "dropped (the band held) in the run.", ""]
    for first, rows in (("stage/reason", s["drops"]), ("kept: score band", s["kept"])):
        if rows:
            cols = _columns(first)
            L += ["| " + " | ".join(cols) + " |", "|---|" + "---:|" * (len(cols) - 2) + "---|"]
            L += ["| " + " | ".join(_row(k, d)) + " |" for k, d in rows.items()]
            L.append("")
    return L + [line[0].upper() + line[1:] + "." for line in notes(s)]

"""What-if curves: for each thresholded signal of the coarse rules, the share
of candidates (documents and tokens) the rules would keep at other values of
that threshold, with every other threshold as configured, per source.

Computed from the candidate store (``candidates/documents``: every document
that reached the coarse rules, with all its signals), so it needs no rerun;
``mdfs refilter`` then applies a chosen threshold for real (with dedup and
the classifier after it, which these curves leave out).  A threshold is one
side of one rule: ``gopher.word_count >= 50`` and ``gopher.word_count <=
100000`` are two curves.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..schema import Coarse

MAX_ROWS = 500_000  # candidates read for the curves (the first ones, in file order)
GRID_POINTS = 21  # thresholds per curve: the 0, 5, ..., 100th percentiles of the signal, and the current one


def _read(root: str, max_rows: int):
    import pyarrow.dataset as ds

    data = ds.dataset(f"{root}/candidates/documents", format="parquet")
    rows = []
    for batch in data.to_batches(columns=["source", "language", "signals", "token_count"]):
        rows += batch.to_pylist()
        if len(rows) >= max_rows:
            return rows[:max_rows], True
    return rows, False


def thresholds_of(rules) -> list[tuple]:
    """(rule index, side, signal, current threshold) for every side of every rule."""
    out = []
    for i, r in enumerate(rules):
        if r.min is not None:
            out.append((i, "min", r.signal, float(r.min)))
        if r.max is not None:
            out.append((i, "max", r.signal, float(r.max)))
    return out


def _passes(values: np.ndarray, side: str, t: float) -> np.ndarray:
    return values >= t if side == "min" else values <= t


def curves(rows: list[dict], rules_by_lang: dict) -> dict:
    """{lang: [curve, ...]}; a curve: signal, side, current, grid, and per source
    the kept share of documents and of tokens at each grid value."""
    out = {}
    groups: dict[str, list[dict]] = {}
    for r in rows:
        lang = r["language"] if r["language"] in rules_by_lang else "other"
        groups.setdefault(lang, []).append(r)
    for lang, docs in sorted(groups.items()):
        rules = rules_by_lang[lang]
        sides = thresholds_of(rules)
        if not sides:
            continue
        signals = sorted({s for _, _, s, _ in sides})
        col = {s: j for j, s in enumerate(signals)}
        values = np.full((len(docs), len(signals)), np.nan)
        for i, d in enumerate(docs):
            for s in d["signals"]:
                j = col.get(s["name"])
                if j is not None:
                    values[i, j] = s["value"]
        tokens = np.array([d["token_count"] or 0 for d in docs], dtype=float)
        sources = np.array([d["source"] for d in docs])
        side_pass = np.stack([_passes(values[:, col[s]], side, t) for _, side, s, t in sides], axis=1)
        lang_curves = []
        for k, (rule_i, side, signal, current) in enumerate(sides):
            others = np.delete(side_pass, k, axis=1).all(axis=1)
            v = values[:, col[signal]]
            finite = v[np.isfinite(v)]
            grid = sorted({current, *np.percentile(finite, np.linspace(0, 100, GRID_POINTS)).round(6).tolist()}) \
                if finite.size else [current]
            per_source = {}
            for src in sorted(set(sources.tolist())):
                m = sources == src
                n, tok = int(m.sum()), float(tokens[m].sum())
                kept = [others[m] & _passes(v[m], side, t) for t in grid]
                per_source[src] = {"documents": n,
                                   "docs": [round(float(x.sum()) / n, 4) if n else 0.0 for x in kept],
                                   "tokens": [round(float(tokens[m][x].sum()) / tok, 4) if tok else 0.0
                                              for x in kept]}
            total_kept_now = float((others & _passes(v, side, current)).mean())
            at = {}
            for q in (25, 75):
                if finite.size:
                    t = float(np.percentile(finite, q))
                    at[f"p{q}"] = [round(t, 6), round(float((others & _passes(v, side, t)).mean()), 4)]
            lang_curves.append({"rule": rules[rule_i].reason, "signal": signal, "side": side, "current": current,
                                "grid": grid, "sources": per_source, "kept_now": round(total_kept_now, 4),
                                "kept_without": round(float(others.mean()), 4), **at})
        out[lang] = lang_curves
    return out


def build(root: str, coarse_cfg: Coarse, max_rows: int = MAX_ROWS) -> dict | None:
    """The what-if section of the report, or None when the run has no candidate store."""
    from apache_beam.io.filesystems import FileSystems

    from ..stages.coarse import rule_sets

    try:
        if not FileSystems.match([f"{root}/candidates/documents/*.parquet"])[0].metadata_list:
            return None
    except Exception:  # noqa: BLE001
        return None
    rows, truncated = _read(root, max_rows)
    return {"candidates": len(rows), "truncated": truncated, "languages": curves(rows, rule_sets(coarse_cfg))}


def to_markdown(section: dict) -> list[str]:
    L = ["", "## What if: coarse thresholds against the candidates", "",
         f"From {section['candidates']:,} candidates (documents that reached the coarse rules"
         + (f"; the first {MAX_ROWS:,} read" if section["truncated"] else "")
         + "): the share the rules keep now, without the rule side at all, and with the threshold at the "
           "signal's 25th / 75th percentile, every other threshold as configured.  Dedup and the classifier "
           "come after and are not counted.  Plots: `whatif_<language>.png` (documents and tokens per source, "
           "current threshold dashed; the rules that drop something).  Apply a threshold with `mdfs refilter`.", "",
         "| language | threshold | now | without | at p25 | at p75 |", "|---|---|---:|---:|---:|---:|"]
    for lang, cs in section["languages"].items():
        for c in cs:
            op = ">=" if c["side"] == "min" else "<="
            at = [f"{c[q][1]:.1%} ({c[q][0]:.3g})" if q in c else "" for q in ("p25", "p75")]
            L.append(f"| {lang} | `{c['signal']}` {op} {c['current']:g} ({c['rule']}) | {c['kept_now']:.1%} | "
                     f"{c['kept_without']:.1%} | {at[0]} | {at[1]} |")
    return L


def plot(section: dict, folder: str, colours: dict) -> list[str]:
    import matplotlib
    from matplotlib.ticker import MaxNLocator

    from .figures import new_figure

    written = []
    for lang, cs in section["languages"].items():
        # panels for the rules that cut something here (the table lists every rule): each panel
        # costs ~0.05 s of rendering, and a flat line at 100 % says nothing
        cs = [c for c in cs if c["kept_without"] - c["kept_now"] > 0.0005]
        if not cs:
            continue
        cols = min(4, len(cs))
        rows = (len(cs) + cols - 1) // cols
        # tick sizes set before the axes exist, few ticks, titles placed explicitly: tick
        # objects and automatic title placement are most of the drawing time
        with matplotlib.rc_context({"xtick.labelsize": 7, "ytick.labelsize": 7}):
            fig = new_figure((3.6 * cols, 2.8 * rows))
            axes = fig.subplots(rows, cols, squeeze=False)
        for ax, c in zip(axes.flat, cs):
            for src, s in c["sources"].items():
                ax.plot(c["grid"], s["docs"], color=colours.get(src), label=src, drawstyle="steps-post")
                ax.plot(c["grid"], s["tokens"], color=colours.get(src), linestyle=":", drawstyle="steps-post")
            ax.axvline(c["current"], color="black", linestyle="--", linewidth=0.8)
            op = ">=" if c["side"] == "min" else "<="
            ax.set_title(f"{c['signal']} {op}", fontsize=8, y=1.0, pad=3)
            ax.set_ylim(-0.02, 1.02)
            ax.set_yticks([0, 0.5, 1])
            ax.xaxis.set_major_locator(MaxNLocator(4))
        for ax in list(axes.flat)[len(cs):]:
            ax.axis("off")
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=8)
        fig.suptitle(f"{lang}: share kept by the rules at each threshold (solid documents, dotted tokens)",
                     fontsize=9, y=1 - 0.12 / (2.8 * rows))
        # fixed margins: tight_layout over a few dozen panels costs seconds
        fig.subplots_adjust(left=0.04, right=0.99, bottom=0.12 / rows + 0.02, top=1 - 0.55 / (2.8 * rows),
                            wspace=0.25, hspace=0.55)
        name = f"whatif_{lang}.png"
        fig.savefig(f"{folder}/{name}", dpi=80)
        written.append(name)
    return written

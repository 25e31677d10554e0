"""``mdfs report OUTPUT_DIR``: the corpus report, from the output directory
alone (``funnel.json``, ``stats/pipeline_stats.json``, ``config.yaml``),
without rerunning anything.

Writes ``OUTPUT_DIR/report/``: ``stats.json``, ``stats.csv``, ``report.md``
and PNG plots (funnel per source, token-length histogram, score histograms).

The mix table follows GPT-3 (Brown et al. 2020, Table 2.2): for each source
its tokens T, its weight w in the training mix, and the epochs it is seen
when training on a budget of B tokens, epochs = w * B / T; effective tokens
= w * B (the tokens the model reads from that source).  The budget is given,
or derived from a model size by the Chinchilla rule D = 20 N (Hoffmann et
al. 2022), and the report then states the training compute C = 6 N D FLOPs.
"""
from __future__ import annotations

import csv
import io
import math

from apache_beam.io.filesystems import FileSystems

from ..config import weight_problems
from ..schema import Mix
from .figures import new_figure


def mix_table(kept_tokens: dict[str, int], mix: Mix) -> dict:
    """The GPT-3 style table.  Sources without a configured weight share what
    the configured weights leave, in proportion to their tokens."""
    weights = dict(mix.weights)
    unknown = weight_problems(weights, list(kept_tokens))
    if unknown:
        raise ValueError("; ".join(unknown))
    given = sum(weights.values())
    rest = [s for s in kept_tokens if s not in weights]
    rest_tokens = sum(kept_tokens[s] for s in rest)
    for s in rest:
        weights[s] = (1 - given) * kept_tokens[s] / rest_tokens if rest_tokens else 0.0
    total = sum(kept_tokens.values())
    n_params = mix.model_params
    if mix.budget_tokens:
        budget, basis = mix.budget_tokens, "given"
    elif n_params:
        budget, basis = mix.tokens_per_param * n_params, "chinchilla"
    else:
        budget, basis = float(total), "one pass over the kept corpus"
    max_epochs = mix.max_epochs
    rows, warnings = [], []
    for s, t in kept_tokens.items():
        w = weights[s]
        epochs = w * budget / t if t else (math.inf if w > 0 else 0.0)
        rows.append({"source": s, "tokens": t, "weight": w, "epochs": epochs, "effective_tokens": w * budget})
        if epochs > max_epochs:
            warnings.append(f"source {s} would be repeated {epochs:.2f} epochs (> {max_epochs:g}): "
                            "lower its weight or add data")
    out = {"budget_tokens": budget, "budget_basis": basis, "total_tokens": total, "rows": rows,
           "warnings": warnings}
    if n_params:
        out["model_params"] = n_params
        out["compute_flops"] = 6.0 * n_params * budget
    return out


def build(output_dir: str, overrides: dict | None = None) -> dict:
    """``overrides``: keys of the ``mix`` section given on the command line."""
    from ..io.readback import load_json, load_report_inputs

    root = output_dir.rstrip("/")
    funnel, stats, cfg = load_report_inputs(root)  # a damaged file: ReadBackError (one line naming it)
    mix = Mix.model_validate({**cfg.mix.model_dump(), **(overrides or {})})
    sources = sorted(set(funnel["sources"]) | set(stats["stages"]))
    kept_tokens = {s: stats["stages"].get(s, {}).get("kept", {}).get("tokens", 0) for s in sources}
    per_source = {}
    for s in sources:
        st = stats["stages"].get(s, {})
        f = funnel["sources"].get(s, {})
        per_source[s] = {"funnel": {k: f.get(k) for k in ("read", "kept", "dropped", "failed")},
                         "dropped_by_reason": f.get("dropped_by_reason", {}),
                         "failed_by_error": f.get("failed_by_error", {}),
                         "pii_replaced": f.get("pii_replaced", {}), "pii_documents": f.get("pii_documents", 0),
                         "fine_decided_by": f.get("fine_decided_by", {}),
                         "stages": st, "length_quantiles": stats["length_quantiles"].get(s),
                         "languages": stats["languages"].get(s, {})}
    from . import whatif

    whatif_section = whatif.build(root, cfg.coarse) if cfg.output.candidates else None
    return {"sources": per_source, "stage_order": ["read", *funnel["stages"], "kept"], "mix": mix_table(kept_tokens, mix),
            "tokenizer": cfg.stats.tokenizer or "cjk_chars_plus_words",
            "length_log2_histogram": stats["length_log2_histogram"], "scores": stats["scores"],
            "skipped_stages": funnel.get("skipped_stages", {}), "whatif": whatif_section,
            "decontamination": (load_json(f"{root}/decontamination.json")
                                if FileSystems.exists(f"{root}/decontamination.json") else None),
            "review": _review_summary(root),
            "dropped_scores": dropped_score_histograms(root) if stats["scores"] or _fine_ran(funnel) else {},
            "fine_thresholds": cfg.fine.thresholds}


def _fine_ran(funnel: dict) -> bool:
    return "fine" in funnel.get("stages", [])


def _review_summary(root: str) -> dict | None:
    """What the reviewers' labels say, when the run has any (``mdfs review``)."""
    import os

    if "://" in root or not os.path.exists(f"{root}/review/labels.jsonl"):
        return None
    from .review import ReviewError
    from .review_summary import summary

    try:
        return summary(root)
    except ReviewError:
        return None


def _fmt(n: float) -> str:
    for unit, div in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.2f}{unit}"
    return f"{n:.0f}"


def to_markdown(rep: dict) -> str:
    mix = rep["mix"]
    L = ["# mdfs corpus report", "", f"Tokens counted with `{rep['tokenizer']}`.", "",
         "## Training mix (GPT-3 Table 2.2 style)", "",
         f"Budget: {_fmt(mix['budget_tokens'])} tokens ({mix['budget_basis']})"
         + (f"; model {_fmt(mix['model_params'])} parameters, compute 6ND = {mix['compute_flops']:.3e} FLOPs"
            if "compute_flops" in mix else "") + ".", "",
         "| source | tokens | weight in mix | epochs at budget | effective tokens |", "|---|---:|---:|---:|---:|"]
    for r in mix["rows"]:
        L.append(f"| {r['source']} | {_fmt(r['tokens'])} | {r['weight']:.1%} | {r['epochs']:.2f} | "
                 f"{_fmt(r['effective_tokens'])} |")
    L += [""] + [f"> warning: {w}" for w in mix["warnings"]]
    order = rep["stage_order"]
    later = [st for st in order if st != "read"]
    L += ["", "## Size per stage", "", "Documents (records for `read`) after each stage:", "",
          "| source | " + " | ".join(order) + " |", "|---|" + "---:|" * len(order)]
    for s, d in rep["sources"].items():
        L.append(f"| {s} | " + " | ".join("" if d["stages"].get(st) is None else f"{d['stages'][st]['documents']:,}"
                                          for st in order) + " |")
    L += ["", "Tokens after each stage, and the bytes the sources offered:", "",
          "| source | read (bytes) | " + " | ".join(f"{st} (tokens)" for st in later) + " |",
          "|---|---:|" + "---:|" * len(later)]
    for s, d in rep["sources"].items():
        read = d["stages"].get("read")
        L.append(f"| {s} | {'' if read is None else _fmt(read['bytes']) + 'B'} | "
                 + " | ".join("" if d["stages"].get(st) is None else _fmt(d["stages"][st]["tokens"]) for st in later)
                 + " |")
    L += ["", "## Outcomes", "", "| source | read | kept | dropped | failed | top drop reasons |", "|---|---:|---:|---:|---:|---|"]
    for s, d in rep["sources"].items():
        f = d["funnel"]
        top = sorted(d["dropped_by_reason"].items(), key=lambda kv: -kv[1])[:4]
        L.append(f"| {s} | {f['read']} | {f['kept']} | {f['dropped']} | {f['failed']} | "
                 + ", ".join(f"{k} {v}" for k, v in top) + " |")
    if any(d.get("pii_replaced") for d in rep["sources"].values()):
        types = sorted({t for d in rep["sources"].values() for t in d.get("pii_replaced", {})})
        L += ["", "## Personal information replaced (spans per type; the values are never kept)", "",
              "| source | documents with any | " + " | ".join(types) + " |", "|---|---:|" + "---:|" * len(types)]
        for s, d in rep["sources"].items():
            L.append(f"| {s} | {d.get('pii_documents', 0):,} | "
                     + " | ".join(f"{d.get('pii_replaced', {}).get(t, 0):,}" for t in types) + " |")
    L += ["", "## Kept documents: length (tokens) and language", "", "| source | p10 | p50 | p90 | max | languages |",
          "|---|---:|---:|---:|---:|---|"]
    for s, d in rep["sources"].items():
        q = d["length_quantiles"] or []
        pick = lambda i: q[i] if len(q) == 11 else ""  # noqa: E731
        langs = ", ".join(f"{k} {v}" for k, v in sorted(d["languages"].items(), key=lambda kv: -kv[1]))
        L.append(f"| {s} | {pick(1)} | {pick(5)} | {pick(9)} | {pick(10)} | {langs} |")
    if any(d.get("fine_decided_by") for d in rep["sources"].values()):
        L += ["", "## Classifier cascade (fine stage)", "",
              "Documents the fine stage judged, by the model whose verdict stands: fastText alone where it is "
              "sure (`fine.cascade`), BERT for the rest.", "",
              "| source | fastText alone | BERT | share sent to BERT |", "|---|---:|---:|---:|"]
        for s, d in rep["sources"].items():
            by = d.get("fine_decided_by") or {}
            if by:
                ft, bt = by.get("fasttext", 0), by.get("bert", 0)
                L.append(f"| {s} | {ft:,} | {bt:,} | {bt / max(ft + bt, 1):.1%} |")
    if rep.get("decontamination"):
        L += decontamination_markdown(rep["decontamination"])
    if rep.get("review"):
        from .review_summary import summary_markdown

        L += summary_markdown(rep["review"])
    if rep.get("whatif"):
        from . import whatif

        L += whatif.to_markdown(rep["whatif"])
    for name, why in rep["skipped_stages"].items():
        L += ["", f"Stage `{name}` was skipped: {why}."]
    L += ["", "Plots: `funnel.png`, `token_lengths.png`" + (", `scores.png`" if rep["scores"] else "") + ".", ""]
    return "\n".join(L)


def decontamination_markdown(dc: dict) -> list[str]:
    """Per evaluation set: its items, those too short to match, and the items found per source."""
    L = ["", "## Evaluation sets found in the corpus (decontamination)", "",
         "| set | action | items | too short | found (items) | found per source | documents dropped / redacted |",
         "|---|---|---:|---:|---:|---|---|"]
    for name, s in dc["sets"].items():
        per = ", ".join(f"{src} {n}" for src, n in s["found_items"].items()) or "none"
        docs = ", ".join(f"{src} {s['dropped_documents'].get(src, 0)} / {s['redacted_documents'].get(src, 0)}"
                         for src in s["documents"]) or "none"
        L.append(f"| {name} | {s['action']} | {s['items']:,} | {len(s['too_short']):,} | "
                 f"{s['found_items_total']:,} | {per} | {docs} |")
    ng = dc["settings"]["ngrams"]
    L += ["", f"Matched as n-grams of {ng['cjk']['n']} characters (CJK) or {ng['words']['n']} words (other), "
              f"at least {dc['settings']['min_matches']} per item; items shorter than "
              f"{ng['cjk']['min_item_tokens']} characters / {ng['words']['min_item_tokens']} words are listed in "
              "`decontamination.json` (`too_short`), not matched."]
    return L


def to_csv(rep: dict) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["source", "stage", "documents", "bytes", "chars", "tokens", "mix_weight", "epochs", "effective_tokens"])
    mix = {r["source"]: r for r in rep["mix"]["rows"]}
    for s, d in rep["sources"].items():
        for st in rep["stage_order"]:
            v = d["stages"].get(st)
            if v:
                m = mix.get(s, {}) if st == "kept" else {}
                w.writerow([s, st, v["documents"], v["bytes"], v["chars"], v["tokens"], m.get("weight", ""),
                            m.get("epochs", ""), m.get("effective_tokens", "")])
    return buf.getvalue()


def source_colours(sources) -> dict:
    """One colour per source, the same in every plot and panel."""
    from matplotlib import colormaps

    return {s: colormaps["tab10"](i % 10) for i, s in enumerate(sorted(sources))}



def _nothing_kept(ax, what: str) -> None:
    ax.text(0.5, 0.5, f"no documents kept: no {what} to show", ha="center", va="center", transform=ax.transAxes,
            fontsize=11, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def funnel_figure(rep: dict):
    sources, stages = list(rep["sources"]), rep["stage_order"]
    colours = source_colours(sources)
    fig = new_figure((9, 4.5))
    ax = fig.subplots()
    width = 0.8 / max(len(sources), 1)
    for i, s in enumerate(sources):
        vals = [(rep["sources"][s]["stages"].get(st) or {}).get("documents", 0) for st in stages]
        ax.bar([x + i * width for x in range(len(stages))], vals, width, label=s, color=colours[s])
    ax.set_xticks([x + width * (len(sources) - 1) / 2 for x in range(len(stages))], stages)
    ax.set_ylabel("documents")
    ax.set_title("Funnel: documents per source after each stage")
    if sources:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def lengths_figure(rep: dict):
    """Kept documents per log2 token-length bin, as steps over every bin (empty ones at 0)."""
    hists = {s: h for s, h in rep["length_log2_histogram"].items() if h and sum(h.values())}
    colours = source_colours(rep["sources"])
    fig = new_figure((9, 4.5))
    ax = fig.subplots()
    ax.set_title("Token length of kept documents")
    if not hists:
        _nothing_kept(ax, "lengths")
        return fig
    lo = min(int(k) for h in hists.values() for k in h)
    hi = max(int(k) for h in hists.values() for k in h)
    edges = [2 ** b for b in range(lo, hi + 2)]
    for s, hist in hists.items():
        counts = [hist.get(str(b), 0) for b in range(lo, hi + 1)]
        ax.stairs(counts, edges, label=s, color=colours.get(s), linewidth=1.5)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("tokens per kept document (log2 bins)")
    ax.set_ylabel("documents")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def dropped_score_histograms(root: str) -> dict:
    """source -> score key -> 20-bin histogram of the classifier scores of the
    documents the fine stage dropped (from their ``signals``)."""
    import os

    import pyarrow.dataset as ds

    out: dict = {}
    if "://" in root or not os.path.isdir(f"{root}/dropped"):
        return out
    table = ds.dataset(f"{root}/dropped", format="parquet").to_table(
        columns=["source", "signals"], filter=ds.field("stage") == "fine")
    for row in table.to_pylist():
        for sig in row["signals"] or []:
            if sig["name"].startswith(("fasttext.", "bert.")):
                hist = out.setdefault(row["source"], {}).setdefault(sig["name"], [0] * 20)
                hist[min(int(sig["value"] * 20), 19)] += 1
    return out


def scores_figure(rep: dict):
    """One panel per score: kept (solid) and dropped (dashed) documents per source,
    the threshold of a drop label marked; one legend for the figure."""
    from matplotlib.lines import Line2D

    kept, dropped = rep["scores"], rep.get("dropped_scores") or {}
    keys = sorted({k for per in (*kept.values(), *dropped.values()) for k in per})
    colours = source_colours(rep["sources"])
    thresholds = rep.get("fine_thresholds") or {}
    fig = new_figure((4 * len(keys), 3.6))
    axes = fig.subplots(1, len(keys), squeeze=False)
    grid = [i / 20 for i in range(21)]
    for ax, key in zip(axes[0], keys):
        for s in rep["sources"]:
            if key in kept.get(s, {}):
                ax.stairs(kept[s][key], grid, color=colours[s], linewidth=1.5)
            if key in dropped.get(s, {}):
                ax.stairs(dropped[s][key], grid, color=colours[s], linewidth=1.5, linestyle="--")
        label = key.split(".", 1)[1]
        if label in thresholds:
            ax.axvline(thresholds[label], color="black", linewidth=0.9, linestyle=":")
            ax.text(thresholds[label], 1.0, f" threshold {thresholds[label]:g}", transform=ax.get_xaxis_transform(),
                    fontsize=7, va="top")
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("probability")
    axes[0][0].set_ylabel("documents")
    handles = [Line2D([], [], color=colours[s], label=s) for s in rep["sources"]
               if any(s in d for d in (kept, dropped))]
    handles += [Line2D([], [], color="0.3", label="kept"), Line2D([], [], color="0.3", linestyle="--", label="dropped"),
                Line2D([], [], color="black", linestyle=":", label="threshold")]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 7), fontsize=8)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def plots(rep: dict, folder: str) -> list[str]:
    written = []
    figures = [("funnel.png", funnel_figure(rep)), ("token_lengths.png", lengths_figure(rep))]
    if rep["scores"] or rep.get("dropped_scores"):
        figures.append(("scores.png", scores_figure(rep)))
    for name, fig in figures:
        fig.savefig(f"{folder}/{name}", dpi=110)
        written.append(name)
    if rep.get("whatif"):
        from . import whatif

        written += whatif.plot(rep["whatif"], folder, source_colours(rep["sources"]))
    return written


def write_report(output_dir: str, overrides: dict | None = None) -> dict:
    from ..io.sinks import write_json

    rep = build(output_dir, overrides)
    folder = f"{output_dir.rstrip('/')}/report"
    FileSystems.mkdirs(folder) if not FileSystems.exists(folder) else None
    write_json(rep, f"{folder}/stats.json")
    for name, text in (("stats.csv", to_csv(rep)), ("report.md", to_markdown(rep))):
        with FileSystems.create(f"{folder}/{name}") as fh:
            fh.write(text.encode("utf-8"))
    if "://" not in folder:  # matplotlib writes local files
        rep["plots"] = plots(rep, folder)
        from .html_report import write_html

        write_html(output_dir.rstrip("/"), rep, rep["plots"])
    return rep


def render_mix(rep: dict, console=None) -> None:

    from rich.table import Table

    from ..funnel import terminal_console

    console = console or terminal_console()
    mix = rep["mix"]
    t = Table(title=f"training mix at {_fmt(mix['budget_tokens'])} tokens ({mix['budget_basis']})",
              title_justify="left")
    for col in ("source", "tokens", "weight", "epochs", "effective tokens"):
        if col == "source":
            t.add_column(col, overflow="fold", min_width=8)
        else:
            t.add_column(col, justify="right", no_wrap=True)
    for r in mix["rows"]:
        t.add_row(r["source"], _fmt(r["tokens"]), f"{r['weight']:.1%}", f"{r['epochs']:.2f}", _fmt(r["effective_tokens"]))
    console.print(t)
    for w in mix["warnings"]:
        console.print(f"[yellow]warning[/]: {w}")

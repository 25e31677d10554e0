"""The report's plots, checked on the figure objects: one legend, a source's
colour the same in every panel, kept and dropped scores with the threshold,
length steps over empty bins, and an empty run that says so."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from matplotlib.patches import StepPatch  # noqa: E402

from mdfs.pipeline.commands import report


def _rep(**extra) -> dict:
    rep = {"sources": {"news": {"stages": {}}, "web": {"stages": {}}}, "stage_order": ["read", "kept"],
           "length_log2_histogram": {"news": {"3": 5, "6": 2}, "web": {"4": 1}},
           "scores": {"news": {"fasttext.spam": [3] * 20, "bert.spam": [1] * 20}, "web": {"fasttext.spam": [2] * 20}},
           "dropped_scores": {"news": {"fasttext.spam": [0] * 10 + [4] * 10}},
           "fine_thresholds": {"spam": 0.5}}
    rep.update(extra)
    return rep


def _steps(ax):
    return [p for p in ax.patches if isinstance(p, StepPatch)]


def test_scores_one_legend_fixed_colours_kept_dropped_and_threshold():
    fig = report.scores_figure(_rep())
    axes = fig.axes
    assert len(fig.legends) == 1 and all(ax.get_legend() is None for ax in axes)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["news", "web", "kept", "dropped", "threshold"]
    colours = report.source_colours(["news", "web"])
    for ax in axes:  # every step line is drawn in its source's colour
        for patch in _steps(ax):
            assert tuple(patch.get_edgecolor()) in {tuple(colours["news"]), tuple(colours["web"])}
    spam = next(ax for ax in axes if ax.get_title() == "fasttext.spam")
    styles = sorted(str(p.get_linestyle()) for p in _steps(spam))
    assert len(_steps(spam)) == 3 and styles.count("--") == 1  # news kept, web kept, news dropped
    assert [ln.get_xdata()[0] for ln in spam.get_lines()] == [0.5]  # the threshold


def test_length_steps_cover_empty_bins_and_an_empty_run_says_so():
    fig = report.lengths_figure(_rep())
    news = next(p for p in _steps(fig.axes[0]) if p.get_label() == "news")
    assert list(news.get_data().values) == [5, 0, 0, 2]  # bins 3..6, the empty ones at 0
    assert list(news.get_data().edges) == [8, 16, 32, 64, 128]
    empty = report.lengths_figure(_rep(length_log2_histogram={}))
    texts = [t.get_text() for t in empty.axes[0].texts]
    assert texts == ["no documents kept: no lengths to show"] and empty.axes[0].get_legend() is None


def test_size_per_stage_keeps_units_apart():
    rep = {"sources": {"s": {"stages": {"read": {"documents": 10, "bytes": 2048, "tokens": 0},
                                        "kept": {"documents": 4, "bytes": 900, "tokens": 1500}},
                             "funnel": {"read": 10, "kept": 4, "dropped": 6, "failed": 0}, "dropped_by_reason": {},
                             "length_quantiles": None, "languages": {}}},
           "stage_order": ["read", "kept"], "tokenizer": "t", "skipped_stages": {}, "scores": {},
           "mix": {"budget_tokens": 1500, "budget_basis": "x", "rows": [], "warnings": []}}
    md = report.to_markdown(rep)
    assert "| s | 10 | 4 |" in md and "| source | read (bytes) | kept (tokens) |" in md and "| s | 2.05KB | 1.50K |" in md
    assert "docs /" not in md

"""Figures for the report and the what-if plots."""
from __future__ import annotations


def new_figure(figsize: tuple[float, float]):
    """A figure of its own, drawn by Agg when saved, without pyplot: no global
    list of open figures to close, and no pyplot import with its backend
    selection (about a fifth of a CPU second of every run's report)."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)

"""The document stages, declared, in the order documents pass through them.

This list is what the pipeline builds (``build.py``), what the funnel counts,
what ``mdfs refilter`` recomputes, reuses or carries, what ``mdfs config``
shows and what docs/ARCHITECTURE.md is checked against.  Each entry is the
stage's ``Stage`` declaration (``stage.py``), found in the stage's own module.
A user's own stages are named in the configuration (``custom_stages``: a
``module:Class`` and the declared stage it comes after) and take their place
here at run time, without a fork of mdfs.
"""
from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..stage import BuildContext, Stage


def _declarations() -> tuple[Stage, ...]:
    # imported on first use, not with the package: the bounded child processes
    # (``extract_worker``, ``pii_custom``) live in this package and would
    # otherwise import every stage and Apache Beam to extract one page
    # (about a CPU second per child start)
    from .coarse import CoarseStage
    from .decontaminate import DecontaminateStage
    from .dedup_exact import ExactDedupStage
    from .dedup_near import NearDedupStage
    from .extract import ExtractStage
    from .fine import FineStage
    from .pii import PiiStage

    return (
        ExtractStage(),
        CoarseStage(),
        DecontaminateStage(),
        PiiStage(),
        ExactDedupStage(),
        NearDedupStage(),
        FineStage(),
    )


def __getattr__(name: str):
    """``STAGES``: the declared stages, in order (built on first access, PEP 562)."""
    if name == "STAGES":
        stages = globals()["STAGES"] = _declarations()
        return stages
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _stages() -> tuple[Stage, ...]:
    # the module attribute, so that a test's monkeypatch.setattr(stages, "STAGES", ...) is what counts
    return globals().get("STAGES") or __getattr__("STAGES")


def declared(cfg=None) -> list[Stage]:
    """The declared stages, with the configuration's own stages (``custom_stages``)
    inserted after the stage each names."""
    from ..stage import load_stage

    stages = list(_stages())
    for custom in (cfg.custom_stages if cfg is not None else []):
        stage = load_stage(custom.stage)
        stage.settings = dict(custom.settings)
        names = [s.name for s in stages]
        if stage.name in names:
            raise ValueError(f"custom_stages: {custom.stage} is named {stage.name!r}, as a stage already is")
        if custom.after not in names:
            raise ValueError(f"custom_stages: {custom.stage} comes after {custom.after!r}, which is "
                             f"not a stage (stages: {', '.join(names)})")
        stages.insert(names.index(custom.after) + 1, stage)
    return stages


def running(build: BuildContext) -> list[Stage]:
    """The stages in this job's graph, in order."""
    return [s for s in declared(build.cfg) if s.runs(build)]


def split_stages(stages: list[Stage]) -> tuple[list, list, list]:
    """(the stages before the first corpus-scope one, the corpus-scope stages from
    there on while they follow each other, the stages after them): a run in units of
    files runs the first in each unit's first job and the last in its second."""
    from ..stage import CORPUS

    first = next((i for i, s in enumerate(stages) if s.scope == CORPUS), len(stages))
    last = first
    while last < len(stages) and stages[last].scope == CORPUS:
        last += 1
    return stages[:first], stages[first:last], stages[last:]


def skipped(cfg) -> dict[str, str]:
    """Stages that will not run, with the reason to tell the user (optional
    stages that are simply not configured are not listed)."""
    out = {}
    for s in declared(cfg):
        why = s.why_off(cfg)
        if why is not None and not s.optional:
            out[s.name] = why
    return out


def funnel_fields(cfg=None) -> dict[str, str]:
    """Every funnel entry the stages fill, with its shape."""
    fields = {}
    for s in declared(cfg):
        fields.update(s.funnel_fields)
    return fields


def output_parts() -> tuple[str, ...]:
    """The output parts the declared stages write beyond kept/dropped/failed."""
    return tuple(dict.fromkeys(part for s in _stages() for part in s.outputs))


def plan(cfg) -> list[dict]:
    """The stages in order with what each declares and whether it runs with
    ``cfg`` (``mdfs config --stages``, docs/ARCHITECTURE.md)."""
    rows = []
    for s in declared(cfg):
        why = s.why_off(cfg)
        rows.append({"stage": s.name, "section": s.section or "-", "runs": "yes" if why is None else f"no: {why}",
                     "scope": s.scope, "changes_text": "yes" if s.changes_text else "no", "refilter": s.refilter,
                     "outputs": ", ".join(s.outputs) or "-"})
    return rows


def render_plan(rows: list[dict]) -> str:
    """``plan`` as plain text within 80 columns: one line per stage, then what
    it writes besides kept/dropped/failed, or why it does not run."""
    cols = {"stage": "stage", "section": "config section", "scope": "scope", "changes_text": "changes text",
            "refilter": "refilter"}
    widths = {c: max(len(h), *(len(r[c]) for r in rows)) for c, h in cols.items()}
    lines = ["  ".join(h.ljust(widths[c]) for c, h in cols.items()).rstrip()]
    for r in rows:
        lines.append("  ".join(r[c].ljust(widths[c]) for c in cols).rstrip())
        if r["runs"] != "yes":
            lines += textwrap.wrap(f"does not run: {r['runs'][4:]}", 80, initial_indent="    ",
                                   subsequent_indent="      ")
        if r["outputs"] != "-":
            lines += textwrap.wrap(f"also writes: {r['outputs']}", 80, initial_indent="    ",
                                   subsequent_indent="      ")
    return "\n".join(lines)

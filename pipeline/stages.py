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

from .coarse import CoarseStage
from .decontaminate import DecontaminateStage
from .dedup_exact import ExactDedupStage
from .dedup_near import NearDedupStage
from .extract import ExtractStage
from .fine import FineStage
from .pii import PiiStage
from .stage import BuildContext, Stage, load_stage

STAGES: tuple[Stage, ...] = (
    ExtractStage(),
    CoarseStage(),
    DecontaminateStage(),
    PiiStage(),
    ExactDedupStage(),
    NearDedupStage(),
    FineStage(),
)


def declared(cfg=None) -> list[Stage]:
    """The declared stages, with the configuration's own stages (``custom_stages``)
    inserted after the stage each names."""
    stages = list(STAGES)
    for custom in (cfg["custom_stages"] if cfg is not None else []):
        stage = load_stage(custom["stage"])
        stage.settings = dict(custom.get("settings") or {})
        names = [s.name for s in stages]
        if stage.name in names:
            raise ValueError(f"custom_stages: {custom['stage']} is named {stage.name!r}, as a stage already is")
        if custom["after"] not in names:
            raise ValueError(f"custom_stages: {custom['stage']} comes after {custom['after']!r}, which is "
                             f"not a stage (stages: {', '.join(names)})")
        stages.insert(names.index(custom["after"]) + 1, stage)
    return stages


def running(build: BuildContext) -> list[Stage]:
    """The stages in this job's graph, in order."""
    return [s for s in declared(build.cfg) if s.runs(build)]


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
    return tuple(dict.fromkeys(part for s in STAGES for part in s.outputs))

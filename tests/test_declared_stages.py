"""Declared stages (issue #36): the pipeline, the funnel and refilter read the
stage declarations (``pipeline/stages/__init__.py``), so a new stage is its module plus
one line in the list, and a user's own stage runs from the configuration
(``custom_stages``) without a fork."""
from __future__ import annotations

import ast
import sys
import textwrap
from pathlib import Path

import pytest

from helpers import assert_invariant, run_job
from mdfs.pipeline import stages as stages_mod
from mdfs.pipeline.config import load_config
from mdfs.pipeline.funnel import build_funnel
from mdfs.pipeline.stage import CORPUS, BuildContext

ROOT = Path(__file__).resolve().parents[1]

PLANTED = '''
import apache_beam as beam

from mdfs.pipeline.stage import COUNT, DoFnStage, Stage


class DropEvenDoFn(beam.DoFn):
    def __init__(self, ctx, modulus):
        self.ctx, self.modulus = ctx, modulus

    def process(self, doc):
        if len(doc.text) % self.modulus == 0:
            yield self.ctx.drop(doc, "planted_length", str(len(doc.text)))
        else:
            yield doc


class DropEven(Stage):
    name = "planted"
    funnel_fields = {"planted_seen": COUNT}

    def transform(self, build):
        return DoFnStage("DropEven", DropEvenDoFn(self.context(build), int(self.settings["modulus"])))

    def kept_events(self, doc):
        return [((doc.source, "planted_seen"), 1)]
'''


@pytest.fixture
def planted_module(tmp_path, monkeypatch):
    (tmp_path / "planted_stage.py").write_text(textwrap.dedent(PLANTED), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "planted_stage"
    sys.modules.pop("planted_stage", None)


def test_custom_stage_from_the_configuration_runs_in_its_place(tmp_path, planted_module):
    """A stage named in ``custom_stages`` after the last declared stage drops exactly
    the kept documents its rule names; everything before it is unchanged."""
    base = run_job(tmp_path / "base")
    with_stage = run_job(tmp_path / "custom", sets=[
        'custom_stages=[{stage: "planted_stage:DropEven", after: fine, settings: {modulus: 2}}]'])
    assert_invariant(with_stage)
    funnel = with_stage["funnel"]
    assert funnel["stages"][-1] == "planted" and funnel["stages"][:-1] == base["funnel"]["stages"]
    even = {r["id"] for r in base["kept"] if len(r["text"]) % 2 == 0}
    assert even and len(even) < len(base["kept"]), "the planted rule must split the kept set"
    assert {r["id"] for r in with_stage["kept"]} == {r["id"] for r in base["kept"]} - even
    planted_drops = [r for r in with_stage["dropped"] if r["stage"] == "planted"]
    assert {r["id"] for r in planted_drops} == even
    assert all(r["reason"] == "planted_length" for r in planted_drops)
    for name, e in funnel["sources"].items():
        assert e["after_stage"]["planted"] == e["kept"] == e["planted_seen"]
        assert e["dropped_by_reason"].get("planted/planted_length", 0) == sum(
            1 for r in planted_drops if r["source"] == name)


def test_adding_a_stage_to_the_list_is_all_it_takes(monkeypatch, planted_module):
    """One line in ``stages.STAGES``: the stage is built, counted and reported."""
    import importlib

    planted = importlib.import_module(planted_module).DropEven()
    planted.settings = {"modulus": 3}
    monkeypatch.setattr(stages_mod, "STAGES", (*stages_mod.STAGES[:2], planted, *stages_mod.STAGES[2:]))
    cfg = load_config()
    build = BuildContext(cfg, "/tmp/unused")
    names = [s.name for s in stages_mod.running(build)]
    assert names[:3] == ["extract", "coarse", "planted"]
    assert stages_mod.funnel_fields(cfg)["planted_seen"] == "count"
    funnel = build_funnel([(("s", "read"), 2), (("s", "planted_seen"), 1), (("s", "after", "planted"), 1)],
                          names, ["s"], stages_mod.funnel_fields(cfg))
    assert funnel["sources"]["s"]["planted_seen"] == 1 and funnel["sources"]["s"]["after_stage"]["planted"] == 1


def test_custom_stage_refusals(planted_module):
    cfg = load_config(sets=['custom_stages=[{stage: "planted_stage:DropEven", after: nowhere}]'])
    with pytest.raises(ValueError, match="comes after 'nowhere', which is not a stage"):
        stages_mod.declared(cfg)
    cfg = load_config(sets=['custom_stages=[{stage: "planted_stage:DropEvenDoFn", after: pii}]'])
    with pytest.raises(ValueError, match="not a subclass of mdfs.pipeline.stage.Stage"):
        stages_mod.declared(cfg)
    with pytest.raises(ValueError, match=r"custom_stages\.0\.stage"):
        load_config(sets=['custom_stages=[{stage: "no colon", after: pii}]'])


def test_the_funnel_refuses_an_event_no_stage_declared():
    with pytest.raises(ValueError, match="undeclared kind 'mystery'"):
        build_funnel([(("s", "mystery"), 1)], ["extract"], ["s"], {})


def test_declarations_are_complete_and_consistent():
    cfg = load_config()
    names = [s.name for s in stages_mod.STAGES]
    assert len(set(names)) == len(names)
    for s in stages_mod.STAGES:
        assert s.section is None or s.section in type(cfg).model_fields, s.name
        assert s.scope in ("document", "corpus") and s.refilter in ("recompute", "reuse", "carry")
        assert set(s.funnel_fields.values()) <= {"count", "by_name"}
    corpus = [s.name for s in stages_mod.STAGES if s.scope == CORPUS]
    assert corpus == ["exact_dedup", "near_dedup"]  # dedup needs the whole corpus; the rest go unit by unit
    # with the defaults, the fine stage is off (no classifier) and says why; decontamination is optional
    assert set(stages_mod.skipped(cfg)) == {"fine"}


class _Literals(ast.NodeVisitor):
    """String constants equal to a stage's name, outside configuration lookups
    (``cfg["coarse"]`` names a configuration section, not a stage)."""

    def __init__(self, names):
        self.names, self.found = names, []

    def visit_Subscript(self, node):
        self.visit(node.value)

    def visit_Constant(self, node):
        if isinstance(node.value, str) and node.value in self.names:
            self.found.append((node.lineno, node.value))


@pytest.mark.parametrize("module", ["build.py", "funnel.py", "commands/run.py", "stages/__init__.py"])
def test_the_graph_and_the_funnel_do_not_branch_on_stage_names(module):
    names = {s.name for s in stages_mod.STAGES}
    visitor = _Literals(names)
    tree = ast.parse((ROOT / "pipeline" / module).read_text(encoding="utf-8"))
    for node in ast.walk(tree):  # docstrings may name stages; code may not
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and ast.get_docstring(node):
            node.body = node.body[1:]
    visitor.visit(tree)
    assert visitor.found == []

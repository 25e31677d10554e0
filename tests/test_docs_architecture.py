"""docs/ARCHITECTURE.md names every ``mdfs`` command and flag (read from the
CLI's own argparse parsers) and every module of pipeline/ and classifiers/,
and every module path it names exists."""
from __future__ import annotations

import argparse
import re
from pathlib import Path

from mdfs.classifiers import cli as classifiers_cli
from mdfs.pipeline.commands import cli
from mdfs.pipeline.options import MdfsOptions

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "ARCHITECTURE.md"
MODULE_PATH = re.compile(r"\b((?:pipeline|classifiers)/[\w/]*\w\.py)\b")


def _job_parser() -> argparse.ArgumentParser:
    """``mdfs run`` and ``mdfs refilter`` parse MdfsOptions' flags (pipeline/options.py)."""
    ap = argparse.ArgumentParser()
    MdfsOptions._add_argparse_args(ap)
    return ap


PARSERS = {"run": _job_parser, "refilter": _job_parser, "config": cli.config_parser,
           "funnel": cli.funnel_parser, "report": cli.report_parser, "sample": cli.sample_parser,
           "review": cli.review_parser, "train-classifier": classifiers_cli.train_parser,
           "eval-classifier": classifiers_cli.eval_parser}


def flags(parser: argparse.ArgumentParser) -> list[tuple[str, ...]]:
    """The long option strings of each optional argument (aliases together), --help left out."""
    out = []
    for action in parser._actions:
        names = tuple(s for s in action.option_strings if s.startswith("--") and s != "--help")
        if names:
            out.append(names)
    return out


def named(text: str, flag: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text) is not None


def test_every_command_has_a_parser_here():
    # a new command fails here until its parser is listed, so its flags are checked too
    assert set(PARSERS) == set(cli.COMMANDS)


def test_every_command_and_flag_is_named():
    text = DOC.read_text(encoding="utf-8")
    missing = [f"mdfs {c}" for c in PARSERS if f"`mdfs {c}" not in text]
    for command, make in PARSERS.items():
        missing += [f"mdfs {command} {' / '.join(names)}" for names in flags(make())
                    if not any(named(text, n) for n in names)]
    assert missing == []


def test_flag_check_can_fail():
    assert flags(cli.config_parser()) == [("--config",), ("--source",), ("--set",), ("--schema",), ("--stages",)]
    assert ("--dedup-against", "--dedup_against") in flags(_job_parser())
    assert named("`--set KEY=VALUE`", "--set") and not named("`--settings`", "--set")
    assert not named("--max-epochs-x", "--max-epochs")


def test_every_module_named_exists_and_every_module_is_named():
    text = DOC.read_text(encoding="utf-8")
    mentioned = set(MODULE_PATH.findall(text))
    assert mentioned, "no module path found: the pattern is wrong"
    assert sorted(p for p in mentioned if not (ROOT / p).is_file()) == []
    modules = {p.relative_to(ROOT).as_posix() for folder in ("pipeline", "classifiers")
               for p in (ROOT / folder).rglob("*.py")}
    assert sorted(modules - mentioned) == []


def test_stale_names_are_gone():
    text = DOC.read_text(encoding="utf-8")
    assert not named(text, "ReadSource")  # the class is ReadSources


def test_the_stage_table_is_what_mdfs_config_stages_prints():
    from mdfs.pipeline.config import load_config
    from mdfs.pipeline.stages import plan, render_plan

    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"<!-- mdfs config --stages -->\n```\n(.*?)\n```", text, re.S)
    assert block, "the generated stage table is missing from docs/ARCHITECTURE.md"
    assert block.group(1) == render_plan(plan(load_config()))


def test_every_declared_stage_is_in_the_docs_and_the_readme_in_order():
    from mdfs.pipeline.stages import STAGES

    names = [s.name for s in STAGES]
    text = DOC.read_text(encoding="utf-8")
    assert [n for n in names if not re.search(rf"(?m)^{n} ──", text)] == []  # each has its box in the diagram
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    diagram = next(line for line in readme.splitlines() if line.startswith("sources ──> read ──>"))
    shown = [part.strip().replace(" ", "_") for part in diagram.split("──>")[2:-1]]
    assert shown == names, "README's diagram and the declared stage order differ"
    table = {row.split("|")[1].strip().replace(" ", "_") for row in readme.splitlines() if row.startswith("| ")}
    assert set(names) <= table, "a declared stage has no row in README's stage table"

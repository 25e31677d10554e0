"""Incremental runs: dedup_state/ and --dedup-against (pipeline/stages/dedup_state.py).

Run A on one set of real documents, run B on a second set holding exact
copies and planted near duplicates of A's documents (and near duplicates
within B): B with --dedup-against A must keep exactly what one run over A and
B as two sources (A with the better priority) keeps from B."""
from __future__ import annotations

import gzip
import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from mdfs.pipeline.config import load_config
from mdfs.pipeline.commands.run import UserError, preflight

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "pipeline" / "samples"


def _mdfs(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mdfs.pipeline.commands.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def _pool() -> list[str]:
    """Real article texts: the bundled news (Chinese and English) and forum samples."""
    texts = [json.loads(line)["text"] for line in gzip.open(SAMPLES / "news" / "news_sample.jsonl.gz", "rt",
                                                            encoding="utf-8")]
    texts += [t for t in pq.read_table(SAMPLES / "forum" / "magic-html_forum.parquet").column("text").to_pylist() if t]
    return [t for t in texts if len(t) > 800]


def near_copy(text: str, rng: random.Random) -> str:
    """A near duplicate: three short edits (a re-crawl with a changed date or counter)."""
    chars = list(text)
    for _ in range(3):
        i = rng.randrange(len(chars) - 10)
        chars[i:i + 3] = list("2024")
    return "".join(chars)


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    rng = random.Random(5)
    pool = _pool()
    assert len(pool) >= 60
    work = tmp_path_factory.mktemp("incremental")
    a_rows = [{"id": f"a{i}", "text": t, "date": "2024-01-01"} for i, t in enumerate(pool[:30])]
    b_rows = [{"id": f"b-exact{i}", "text": pool[i]} for i in range(6)]  # exact copies of A's
    b_rows += [{"id": f"b-near{i}", "text": near_copy(pool[i], rng)} for i in range(6, 12)]  # near copies of A's
    fresh = pool[30:50]
    b_rows += [{"id": f"b-new{i}", "text": t} for i, t in enumerate(fresh)]
    b_rows += [{"id": f"b-new{i}-again", "text": near_copy(fresh[i], rng)} for i in range(4)]  # within B
    a = _write(work / "a.jsonl", a_rows)
    b = _write(work / "b.jsonl", b_rows)
    prio = ["--set", "sources.a.priority=1", "--set", "sources.b.priority=100"]
    out = {}
    for name, args in {"A": ["--source", f"a={a}", "--set", "sources.a.priority=1"],
                       "B": ["--source", f"b={b}", "--set", "sources.b.priority=100", "--dedup-against", work / "A"],
                       "AB": ["--source", f"a={a}", "--source", f"b={b}", *prio]}.items():
        r = _mdfs("run", "--output", work / name, *args, cwd=work)
        assert r.returncode == 0, r.stderr
        out[name] = work / name
    return out


def _kept(run: Path, source: str) -> set:
    t = ds.dataset(run / "kept", format="parquet").to_table(columns=["id", "source"]).to_pylist()
    return {r["id"] for r in t if r["source"] == source}


def _dropped(run: Path) -> list[dict]:
    return ds.dataset(run / "dropped", format="parquet").to_table(columns=["id", "stage", "reason", "detail"]
                                                                   ).to_pylist()


def test_b_against_a_keeps_what_one_run_over_both_keeps(runs):
    kept_b, kept_ab = _kept(runs["B"], "b"), _kept(runs["AB"], "b")
    assert kept_b == kept_ab
    assert _kept(runs["A"], "a") == _kept(runs["AB"], "a")  # A's output is what it was
    drops = {d["id"]: d for d in _dropped(runs["B"]) if d["stage"] in ("exact_dedup", "near_dedup")}
    exact = [i for i, d in drops.items() if d["reason"] == "exact_duplicate" and i.startswith("b-exact")]
    near = [i for i, d in drops.items() if d["reason"] == "near_duplicate" and i.startswith("b-near")]
    assert len(exact) >= 4 and len(near) >= 4, drops  # (copies of A documents the coarse rules dropped are not here)
    for i in exact + near:  # the detail names the earlier run and its document
        run_dir, _, earlier_id = drops[i]["detail"].partition(": ")
        assert Path(run_dir) == runs["A"].resolve() and earlier_id == "a" + re.sub(r"\D", "", i)
    within = {i: d["detail"] for i, d in drops.items() if i.startswith("b-new")}  # near copies inside B
    assert within and all(i.removesuffix("-again") == d.removesuffix("-again") and i != d for i, d in within.items())
    near_stats = json.loads((runs["B"] / "near_dedup.json").read_text())
    assert near_stats["earlier_documents"] == len(_kept(runs["A"], "a"))


def test_dedup_state_is_small_and_declared(runs):
    from mdfs.schemas import DEDUP_STATE_SCHEMA

    state = runs["A"] / "dedup_state"
    table = ds.dataset(state, format="parquet").to_table()
    assert table.schema.remove_metadata() == DEDUP_STATE_SCHEMA.remove_metadata()
    assert table.num_rows == len(_kept(runs["A"], "a"))
    assert {len(s) for s in table.column("signature").to_pylist()} == {256 * 4}
    files = sum(f.stat().st_size for f in state.glob("*.parquet"))
    assert files / table.num_rows <= 1200, files / table.num_rows  # bytes per kept document
    params = json.loads((state / "_params.json").read_text())
    assert params["signature"] == {"near_dedup.num_perm": 256, "near_dedup.seed": 1,
                                   "near_dedup.shingles": load_config().as_dict()["near_dedup"]["shingles"]}


@pytest.mark.parametrize("setting, message", [
    ("near_dedup.num_perm=128", "near_dedup.num_perm is 256 there and 128 here"),
    ("near_dedup.shingles={default: {unit: word, n: 3}}", "near_dedup.shingles"),
    ("pii.enabled=false", "pii.enabled is true there and false here"),
    ("coarse.traditional_chinese=keep", "coarse.traditional_chinese"),
    ("extract.engine=resiliparse", 'extract.engine is "trafilatura" there and "resiliparse" here'),
])
def test_incompatible_parameters_are_refused(runs, tmp_path, setting, message):
    cfg = load_config(sources=["b=x.jsonl"], sets=[setting], dedup_against=[str(runs["A"])])
    with pytest.raises(UserError, match=message):
        preflight(cfg, str(tmp_path / "out"), sources=False)


def test_runs_without_state_or_success_are_refused(runs, tmp_path):
    def refused(earlier, message, **kw):
        cfg = load_config(sources=["b=x.jsonl"], dedup_against=[str(earlier)])
        with pytest.raises(UserError, match=message):
            preflight(cfg, str(kw.get("out", tmp_path / "out")), sources=False)

    refused(tmp_path / "nowhere", "no such run directory")
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "_SUCCESS").write_text("{}")
    refused(bare, "has no dedup state")
    (bare / "_SUCCESS").unlink()
    refused(bare, "did not finish with _SUCCESS")
    refused(runs["A"], "this run's own output directory", out=runs["A"])
    cfg = load_config(sources=["b=x.jsonl"], dedup_against=[str(runs["A"])],
                      sets=["exact_dedup.enabled=false", "near_dedup.enabled=false"])
    with pytest.raises(UserError, match="needs exact_dedup or near_dedup"):
        preflight(cfg, str(tmp_path / "out"), sources=False)
    assert load_config(sources=["b=x.jsonl"], dedup_against=[str(runs["A"])]).dedup_against == [str(runs["A"])]


def test_readme_monthly_snapshots_example(tmp_path):
    import shlex

    lines = [line for line in (REPO / "README.md").read_text().splitlines()
             if line.startswith("mdfs run --output snapshot-")]
    assert len(lines) == 2
    for line in lines:
        r = _mdfs(*shlex.split(line)[1:], cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    first, second = (json.loads((tmp_path / f"snapshot-{i}" / "funnel.json").read_text()) for i in (1, 2))
    cc = second["sources"]["cc"]
    assert first["sources"]["cc"]["kept"] > 10 and cc["kept"] == 0
    before = first["sources"]["cc"]  # what reached dedup then is all a duplicate of snapshot-1 now
    for reason in ("exact_dedup/exact_duplicate", "near_dedup/near_duplicate"):
        then = before["dropped_by_reason"].get(reason, 0)
        assert cc["dropped_by_reason"].get(reason, 0) == then + (before["kept"] if reason.startswith("exact") else 0)
    assert second["sources"]["zh"]["kept"] > 10
    details = {d["detail"].partition(": ")[0] for d in _dropped(tmp_path / "snapshot-2") if d["stage"] == "exact_dedup"}
    assert details == {str((tmp_path / "snapshot-1").resolve())}

"""A run in units of files (pipeline/commands/units.py) ends as one job over
the same input does, on planted near-duplicate families that span units;
killed by SIGKILL and resumed, it still does; a resume with another
configuration or other inputs is refused."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.dataset as ds
import pytest
import yaml

from mdfs.pipeline.commands.units import UnitProgress, group, input_files
from mdfs.pipeline.config import load_config

from helpers import real_en_texts, real_zh_texts

ZH_ALPHA = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动"
EN_WORDS = "river market engine season window garden letter doctor silver planet".split()
FILES = 4  # one unit each (run.unit_mb below the smallest file)


def _zh_edit(text: str, rate: float, rng: random.Random) -> str:
    return "".join(rng.choice(ZH_ALPHA) if rng.random() < rate else ch for ch in text)


def _en_edit(text: str, rate: float, rng: random.Random) -> str:
    return " ".join(rng.choice(EN_WORDS) if rng.random() < rate else w for w in text.split())


def planted(folder: Path) -> dict:
    """JSONL files of two sources; families whose copies lie in different files: near
    copies with other dates and sources, exact copies after normalisation, a chain, a
    too-different variant; documents the coarse rules drop; a line that is not JSON."""
    rng = random.Random(3)
    zh, en = real_zh_texts(), real_en_texts()
    files = {f: [] for f in range(FILES)}
    n = iter(range(10 ** 6))

    def add(text, source="web", date=None, f=None):
        i = next(n)
        files[rng.randrange(FILES) if f is None else f].append(
            (source, {"id": f"d{i:03d}", "text": text, "url": f"https://x.example/{i}", "date": date}))

    for fam in range(6):
        base, edit = ((zh[fam][:1500], _zh_edit) if fam % 2 == 0 else (" ".join(en[fam].split()[:400]), _en_edit))
        add(base, "web", "2022-03-01", f=fam % FILES)
        add(edit(base, 0.01, rng), "news", "2023-01-01", f=(fam + 1) % FILES)
        add(edit(base, 0.02, rng), "web", rng.choice([None, "2021-06-01"]), f=(fam + 2) % FILES)
        add("  " + base.upper() + "\n", "web", "2020-01-01", f=(fam + 3) % FILES)
        add(base, "news", None)
        add(edit(base, 0.3, rng), "web", None)
    words, other = en[2].split()[:600], en[3].split()
    w1 = words[:100] + other[:45] + words[145:]
    w2 = w1[:400] + other[100:145] + w1[445:]
    for f, (text, date) in enumerate(((words, "2020-01-01"), (w1, "2021-01-01"), (w2, "2022-01-01"))):
        add(" ".join(text), "web", date, f=f)
    for t in zh[7:10] + en[7:10]:
        add(t[:1500], "news", None)
    for f in range(FILES):
        add("短。", "web", None, f=f)  # too short for the coarse rules
    for f in range(FILES):
        for source in ("web", "news"):
            lines = [json.dumps(row, ensure_ascii=False) for s, row in files[f] if s == source]
            if f == 1 and source == "web":
                lines.insert(1, '{"id": "broken", "text": ')  # a dead letter of the read stage
            (folder / f"{source}-{f}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = {"sources": {"web": {"paths": [str(folder / "web-*.jsonl")], "priority": 2},
                          "news": {"paths": [str(folder / "news-*.jsonl")], "priority": 1}}}
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return {"config": str(path)}


def mdfs(*args, **kw):
    return subprocess.run([sys.executable, "-m", "mdfs.pipeline.commands.cli", *args], capture_output=True, text=True,
                          timeout=900, **kw)


def run_args(config: str, out: Path, *extra: str) -> list[str]:
    return ["run", "--config", config, "--output", str(out), "--set", "read.progress_every_s=1", *extra]


UNITS = ("--set", "run.unit_mb=0.000001")  # every file a unit of its own
ONE_JOB = ("--set", "run.unit_mb=0")


def outcome(out: Path) -> dict:
    """What must be the same: kept and dropped rows, dead letters, funnel, statistics, near_dedup.json."""
    def rows(kind, key):
        return sorted(ds.dataset(str(out / kind), format="parquet").to_table().to_pylist(), key=key)

    funnel = json.loads((out / "funnel.json").read_text())
    funnel.pop("elapsed_s")
    return {"kept": rows("kept", lambda r: r["id"] + str(r["file"]) + str(r["offset"])),
            "dropped": rows("dropped", lambda r: (r["id"], r["stage"], str(r["file"]), r["offset"] or 0)),
            "failed": rows("failed", lambda r: (str(r["id"]), r["stage"], str(r["file"]), r["offset"] or 0)),
            "funnel": funnel, "stats": json.loads((out / "stats" / "pipeline_stats.json").read_text()),
            "near": json.loads((out / "near_dedup.json").read_text())}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("units")
    data = folder / "data"
    data.mkdir()
    planted_cfg = planted(data)
    one = folder / "one"
    res = mdfs(*run_args(planted_cfg["config"], one, *ONE_JOB))
    assert res.returncode == 0, res.stderr
    return {"folder": folder, "config": planted_cfg["config"], "one": outcome(one), "one_dir": one}


def test_units_give_what_one_job_gives(corpus):
    out = corpus["folder"] / "units"
    res = mdfs(*run_args(corpus["config"], out, *UNITS))
    assert res.returncode == 0, res.stderr
    assert f"{FILES * 2} units" in res.stderr or "units" in res.stderr
    got, want = outcome(out), corpus["one"]
    reasons = {r["reason"] for r in want["dropped"]}
    assert {"near_duplicate", "exact_duplicate"} <= reasons and want["failed"]  # the planted cases reached them
    for part in want:
        assert got[part] == want[part], part
    assert not list((out / "_units").rglob("*.parquet"))  # staging removed; plan and markers stay
    assert (out / "_units" / "plan.json").exists()


def _wait_for(path: Path, proc, timeout=600):
    t0 = time.monotonic()
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() - t0 < timeout
        time.sleep(0.05)


def test_killed_and_resumed_gives_what_one_job_gives(corpus):
    """SIGKILL after unit 1's first pass, then (resumed) after unit 0's second pass;
    refusals on the way: another configuration, a changed input file."""
    out = corpus["folder"] / "killed"
    args = run_args(corpus["config"], out, *UNITS)
    for marker in ("unit-00001/p1.done", "unit-00000/p2.done"):
        proc = subprocess.Popen([sys.executable, "-m", "mdfs.pipeline.commands.cli", *args,
                                 *(["--resume"] if (out / "_units").exists() else [])],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        _wait_for(out / "_units" / marker, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert (out / "_INCOMPLETE").exists()
        told = mdfs("funnel", str(out))
        assert told.returncode == 1 and "units" in told.stderr and "to do" in told.stderr
    res = mdfs(*args, "--resume", "--set", "coarse.enabled=false")
    assert res.returncode == 2 and "configuration differs" in res.stderr and len(res.stderr.splitlines()) == 1
    touched = Path(corpus["folder"] / "data" / "web-2.jsonl")
    st = touched.stat()
    os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 10 ** 9))
    res = mdfs(*args, "--resume")
    assert res.returncode == 2 and "web-2.jsonl" in res.stderr and "changed" in res.stderr
    os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns))
    res = mdfs(*args, "--resume")
    assert res.returncode == 0, res.stderr
    got, want = outcome(out), corpus["one"]
    for part in want:
        assert got[part] == want[part], part


def test_resume_refusals(corpus, tmp_path):
    config = corpus["config"]
    res = mdfs(*run_args(config, tmp_path / "none", *UNITS), "--resume")
    assert res.returncode == 2 and "no run to resume" in res.stderr
    res = mdfs(*run_args(config, corpus["one_dir"], *UNITS), "--resume")
    assert res.returncode == 2 and "finished run" in res.stderr
    res = mdfs(*run_args(config, corpus["one_dir"], *UNITS), "--resume", "--overwrite")
    assert res.returncode == 2 and "--overwrite" in res.stderr


def test_units_of_files_in_a_stable_order(tmp_path):
    for name, size in (("b.jsonl", 300), ("a.jsonl", 500), ("c.jsonl", 2000), ("d.jsonl", 100)):
        (tmp_path / name).write_bytes(b"x" * size)
    cfg = load_config(None, None, [f"t={tmp_path}/*.jsonl"])
    files = input_files(cfg)
    assert [Path(f[1]).name for f in files] == ["a.jsonl", "b.jsonl", "c.jsonl", "d.jsonl"]
    assert group(files, 900) == [[0, 1], [2], [3]]  # a file bigger than a unit is a unit of its own
    assert group(files, 10 ** 6) == [[0, 1, 2, 3]]


def test_progress_line_units_rate_and_eta():
    class Plan:
        units, sizes = [[0], [1], [2], [3]], [100, 100, 200, 100]

    p = UnitProgress(Plan())
    p.start(1, [0, 1, 2, 3])
    p.t0 -= 10
    assert "ETA after its first unit" in p.line({"records read": 50}, p.t0 + 10)
    p.unit_done(0, 400)
    line = p.line({"records read": 100}, p.t0 + 10)
    # 100 bytes took 10 s: the 400 left take 40 s; 500 records in 10 s
    assert "1 of 4 units done" in line and "500 records (50/s)" in line and "ETA of this pass 40 s" in line


def test_too_little_free_disk_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    from collections import namedtuple

    from mdfs.pipeline.commands import units
    from mdfs.pipeline.options import JobOptions

    for i in range(3):
        (tmp_path / f"f{i}.jsonl").write_bytes(b"x" * 1000)
    cfg = load_config(None, ["run.unit_mb=0.001"], [f"t={tmp_path}/*.jsonl"])
    usage = namedtuple("usage", "total used free")
    out = tmp_path / "out"
    # 3,000 input bytes need 3.2 x 3,000 = 9,600 free
    monkeypatch.setattr(units.shutil, "disk_usage", lambda path: usage(10 ** 6, 0, 9_000))
    with pytest.raises(units.Refused, match="not enough free disk"):
        units.plan_units(cfg, str(out), JobOptions([]))
    assert not out.exists()
    monkeypatch.setattr(units.shutil, "disk_usage", lambda path: usage(10 ** 6, 0, 10_000))
    plan = units.plan_units(cfg, str(out), JobOptions([]))
    assert plan.units == [[0], [1], [2]] and plan.sizes == [1000, 1000, 1000]
    assert units.plan_units(cfg, str(out), JobOptions(["--runner=FlinkRunner"])) is None  # the engine's memory
    assert units.plan_units(load_config(None, ["run.unit_mb=0"], [f"t={tmp_path}/*.jsonl"]), str(out),
                            JobOptions([])) is None


def test_no_python_object_outlives_its_unit_job(corpus, monkeypatch, tmp_path):
    """A run in units is one process for every job: after each job the live
    objects of mdfs's own classes (stages' DoFns, documents, verdicts, their
    settings) are counted, when ``release_freed_memory`` runs.  A cache or a
    reference that kept each job's DoFns or documents would grow the count
    with every job; it stays the same from the second job of a pass on, and
    the count of all Python objects stays flat too (re's bounded cache of
    compiled patterns aside)."""
    import gc

    from mdfs.pipeline.commands import cli, units

    ours, every = [], []
    release = units.release_freed_memory

    def counted():
        release()
        objects = gc.get_objects()
        ours.append(sum(1 for o in objects if str(getattr(type(o), "__module__", "")).startswith("mdfs.")))
        every.append(len(objects))

    monkeypatch.setattr(units, "release_freed_memory", counted)
    out = tmp_path / "out"
    assert cli.main(run_args(corpus["config"], out, *UNITS)) == 0
    n = len(json.loads((out / "_units" / "plan.json").read_text())["units"])
    assert n >= 4 and len(ours) == 2 * n  # one job per unit and pass
    for first, last in ((1, n), (n + 1, 2 * n)):
        assert len(set(ours[first:last])) == 1, ours
        assert every[last - 1] - every[first] < 600, every  # re's cache holds at most 512 patterns
    assert outcome(out) == corpus["one"]

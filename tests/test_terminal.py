"""What a person sees in the terminal: no third-party start-up noise at
default verbosity, also from multi-process workers; -v shows it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOISE = ("apitools not found", "Logging handler created", "No semi_persistent_directory found",
         "Discarding unparseable args")


def _mdfs(*args, cwd):
    return subprocess.run([sys.executable, "-m", "mdfs.pipeline.commands.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_multi_worker_run_is_quiet_by_default_and_verbose_with_v(tmp_path):
    news = REPO / "pipeline" / "samples" / "news" / "*.jsonl.gz"
    args = ["--source", f"news={news}", "--runner=DirectRunner", "--direct_running_mode=multi_processing",
            "--direct_num_workers=2"]
    quiet = _mdfs("run", "--output", tmp_path / "q", *args, cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert not [n for n in NOISE if n in quiet.stderr], quiet.stderr
    assert "output:" in quiet.stdout and "stage fine SKIPPED" in quiet.stderr  # mdfs's own lines stay
    loud = _mdfs("run", "-v", "--output", tmp_path / "v", *args, cwd=tmp_path)
    assert loud.returncode == 0 and "Discarding unparseable args" in loud.stderr


def test_a_run_shows_overall_progress_and_its_phases(tmp_path):
    r = _mdfs("run", "--output", tmp_path / "o", "--set", "read.progress_every_s=0.5", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = [x for x in r.stderr.splitlines() if x.startswith("mdfs: ")]
    reading = [x for x in lines if "records read (" in x]
    assert reading, r.stderr  # totals over every worker, with the rate
    counts = [int(x.split(": ", 2)[2].split(" records")[0].replace(",", "")) for x in lines if "records read" in x]
    assert counts == sorted(counts)  # running totals only grow
    assert any(x.startswith("mdfs: now dedup and the later stages") for x in lines)
    assert any("slowest stage so far: extract (" in x for x in lines)  # extraction dominates on real pages
    assert not (tmp_path / "o" / "_progress").exists()  # scratch, removed at the end

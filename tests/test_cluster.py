"""A real cluster on this machine: a Flink session cluster (JobManager and two
TaskManagers) and a Spark standalone cluster (master and two workers), each
process bound to 127.0.0.1 and started by deploy/local-cluster.sh from the
jars deploy/local-engines.sh built; the job is submitted over the network by
`mdfs run` (its job server talks to the cluster's REST / master port), and
each TaskManager or executor starts its Python SDK workers as separate
processes (Beam's PROCESS environment, `python -m mdfs.pipeline.commands.sdk_worker_boot`)
from a separate worker venv (deploy/workers/worker-venv.sh cpu DIR: the lean
install, nothing from this process).  Not one shared EXTERNAL worker pool:
with two TaskManagers its workers' ids collide (deploy/local-cluster.sh).  The samples give the DirectRunner's kept, dropped and failed
ids and funnel.  Everything is stopped by its PID at the end.

Needs MDFS_WORKER_VENV (the worker venv); .ci/run builds it and sets
MDFS_REQUIRE_ENGINES=...cluster, so there a missing piece fails instead of
skipping."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import assert_invariant, load_output, run_job

REPO = Path(__file__).resolve().parents[1]
ENGINES = Path(os.environ.get("MDFS_ENGINES") or REPO / ".engines")
VENV = os.environ.get("MDFS_WORKER_VENV", "")
REQUIRED = "cluster" in os.environ.get("MDFS_REQUIRE_ENGINES", "")

pytestmark = pytest.mark.skipif(
    not REQUIRED and not (VENV and Path(VENV, "bin", "python").exists()
                          and (ENGINES / "flink-job-server-lib").is_dir()),
    reason="no worker venv in MDFS_WORKER_VENV or no .engines/ (deploy/workers/worker-venv.sh, "
           "deploy/local-engines.sh)")


@pytest.fixture(scope="module")
def direct(tmp_path_factory):
    out = tmp_path_factory.mktemp("cluster-direct")
    return run_job(out)


def _listening_off_loopback(pids: list[int]) -> list[str]:
    """Sockets of these processes listening on anything but 127.0.0.1 (ss -ltnp)."""
    ss = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    bad = []
    for line in ss.splitlines():
        local = line.split()[3]
        if any(f"pid={p}," in line for p in pids) and not local.startswith(("127.0.0.1:", "[::ffff:127.0.0.1]:")):
            bad.append(line)
    return bad


def _on_cluster(engine: str, tmp_path: Path, direct: dict) -> Path:
    assert VENV and Path(VENV, "bin", "python").exists(), f"no worker venv at MDFS_WORKER_VENV={VENV!r}"
    run_dir = tmp_path / "cluster"
    script = REPO / "deploy" / "local-cluster.sh"
    env = {**os.environ, "MDFS_ENGINES": str(ENGINES)}
    recorded: list[int] = []
    started = subprocess.run(["bash", str(script), "start", engine, str(run_dir), VENV], capture_output=True,
                             text=True, env=env, timeout=300)
    try:
        assert started.returncode == 0, started.stderr[-3000:]
        flags = (run_dir / "flags").read_text().split()
        pids = [int(line.split()[0]) for line in (run_dir / "pids").read_text().splitlines()]
        recorded.extend(pids)
        assert len(pids) == 3  # JobManager or master, two TaskManagers or workers
        assert not _listening_off_loopback(pids)
        out = tmp_path / "out"
        job = subprocess.run([sys.executable, "-m", "mdfs.pipeline.commands.cli", "run", "--output", str(out), *flags],
                             capture_output=True, text=True, env=env, timeout=900)
        assert job.returncode == 0, job.stderr[-3000:]
        res = load_output(out)
        assert_invariant(res)
        from test_runner_parity import _signature

        assert _signature(res) == _signature(direct)
        # the Python work ran in SDK worker processes the cluster started from the worker venv
        workers = (run_dir / "logs" / "sdk-workers.log").read_text().splitlines()
        assert len(workers) >= 2 and all("--provision_endpoint=" in line for line in workers)
        assert VENV in (run_dir / "sdk-worker").read_text()
        return run_dir
    finally:
        subprocess.run(["bash", str(script), "stop", str(run_dir)], timeout=120)
        assert not (run_dir / "pids").exists()
        for pid in recorded:  # every cluster process is gone
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)


def test_flink_session_cluster_gives_the_same_results(tmp_path, direct):
    run_dir = _on_cluster("flink", tmp_path, direct)
    logs = {p.name: p.read_text(errors="replace") for p in (run_dir / "logs").glob("taskmanager-*.log")}
    assert len(logs) == 2
    # the job's tasks were deployed to both TaskManagers (parallelism 2, one slot each)
    assert all("Received task" in text for text in logs.values()), {k: v[-500:] for k, v in logs.items()}


def test_spark_standalone_cluster_gives_the_same_results(tmp_path, direct):
    run_dir = _on_cluster("spark", tmp_path, direct)
    logs = {p.name: p.read_text(errors="replace") for p in (run_dir / "logs").glob("spark-worker-*.log")}
    assert len(logs) == 2
    # each worker launched an executor for the job
    assert all("Asked to launch executor" in text for text in logs.values()), {k: v[-500:] for k, v in logs.items()}


def test_stop_leaves_nothing_running(tmp_path):
    """A cluster start that fails half-way stops what it started (by PID)."""
    run_dir = tmp_path / "broken"
    env = {**os.environ, "MDFS_ENGINES": str(tmp_path / "no-engines")}
    r = subprocess.run(["bash", str(REPO / "deploy" / "local-cluster.sh"), "start", "flink", str(run_dir),
                        VENV or sys.prefix], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2 and "deploy/local-engines.sh" in r.stderr
    assert not (run_dir / "pids").exists()

"""Runner parity: the same job on the in-process DirectRunner, DirectRunner
with 2 worker processes, Beam's PortableRunner against Beam's own Python
job service with an EXTERNAL worker pool (workers in separate processes), and
Prism (Beam's Go runner, built by deploy/local-engines.sh) gives identical
kept ids, dropped ids with reasons, funnel and statistics.  The test starts
the services itself and stops them by their own process ids."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mdfs.pipeline.config import SAMPLES_DIR

from helpers import assert_invariant, run_job

SOURCES = [f"cc={SAMPLES_DIR}/warc/cc-main-2020-34_sample_resiliparse.warc.gz",
           f"cc={SAMPLES_DIR}/warc/revisit-example_warcio.warc.gz",
           f"cc={SAMPLES_DIR}/warc/truncated-record_resiliparse.warc.gz",
           f"cc={SAMPLES_DIR}/warc/wget_sample-0001_dolma.warc.gz",
           f"news={SAMPLES_DIR}/news/news_sample.jsonl.gz"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"service exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"port {port} did not open")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def portable_services(tmp_path_factory):
    """Beam's Python job service and an EXTERNAL worker pool on free local ports."""
    log_dir = tmp_path_factory.mktemp("beam-services")
    env = dict(os.environ)
    # the worker pool starts workers with a bare `python`: this interpreter's bin first on PATH
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    job_port, pool_port = _free_port(), _free_port()
    job = subprocess.Popen([sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main",
                            "--port", str(job_port)], env=env, stdout=open(log_dir / "job.log", "wb"),
                           stderr=subprocess.STDOUT)
    pool = subprocess.Popen([sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main",
                             "--service_port", str(pool_port)], env=env, stdout=open(log_dir / "pool.log", "wb"),
                            stderr=subprocess.STDOUT)
    try:
        _wait_port(job_port, job)
        _wait_port(pool_port, pool)
        yield job_port, pool_port
    finally:
        _stop(pool)
        _stop(job)


def _signature(res):
    return (sorted(r["id"] for r in res["kept"]),
            sorted((r["id"], r["stage"], r["reason"]) for r in res["dropped"]),
            sorted((r["id"], r["stage"], r["error_kind"], r["records"]) for r in res["failed"]),
            res["funnel"]["sources"])


# --- Prism ---------------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]
PRISM = Path(os.environ.get("MDFS_PRISM") or REPO / ".engines" / "prism")
# .ci/run builds Prism and sets MDFS_REQUIRE_ENGINES=prism: there a missing binary fails instead of skipping
needs_prism = pytest.mark.skipif(not PRISM.exists() and "prism" not in os.environ.get("MDFS_REQUIRE_ENGINES", ""),
                                 reason="no Prism binary (bash deploy/local-engines.sh builds it)")
# a fresh Prism job server per test: the process-wide one may already exist without --prism_location
PRISM_ARGS = ["--runner=PrismRunner", f"--prism_location={PRISM}", "--environment_type=LOOPBACK",
              "--experiments=disable_prism_server_singleton"]


def _stats(out_dir: Path) -> dict:
    import json

    return json.loads((out_dir / "stats" / "pipeline_stats.json").read_text())


@needs_prism
def test_prism_gives_the_same_results_and_statistics(tmp_path):
    assert PRISM.exists(), f"Prism binary missing at {PRISM}"
    base = run_job(tmp_path / "direct", sources=SOURCES)
    prism = run_job(tmp_path / "prism", sources=SOURCES, beam_args=PRISM_ARGS)
    assert_invariant(prism)
    assert _signature(prism) == _signature(base)
    assert _stats(tmp_path / "prism") == _stats(tmp_path / "direct")


def planted_inputs(data: Path) -> list[str]:
    """Damaged members, a stray byte, a bad Parquet cell, the same file matched twice."""
    import gzip
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from test_nothing_lost import record, set_content_length, urls

    data.mkdir(parents=True, exist_ok=True)
    recs = [record(u) for u in urls(12)]
    recs[3] = set_content_length(recs[3], "-1")
    members = [gzip.compress(r, mtime=0) for r in recs]
    members[7] = members[7][: len(members[7]) // 2]
    (data / "damaged.warc.gz").write_bytes(b"".join(members) + b"X")
    lines = b"".join(json.dumps({"text": f"第{i}行，" * 60}, ensure_ascii=False).encode() + b"\n" for i in range(20))
    (data / "lines.jsonl.gz").write_bytes(gzip.compress(lines, mtime=0) + b"\x07")
    pq.write_table(pa.table({"text": ["一" * 300, "二" * 300, "三" * 300],
                             "date": pa.array([0, 10**12, 0], type=pa.timestamp("s"))}), data / "rows.parquet")
    return [f"w={data}/*.warc.gz", f"w={data}/damaged.warc.gz", f"j={data}/*.jsonl.gz", f"p={data}/*.parquet"]


@needs_prism
def test_prism_on_planted_hostile_inputs(tmp_path):
    """The accounting of damaged inputs is the same on Prism."""
    sources = planted_inputs(tmp_path / "in")
    base = run_job(tmp_path / "direct", sources=sources)
    prism = run_job(tmp_path / "prism", sources=sources, beam_args=PRISM_ARGS)
    assert base["failed"] and any(r["records"] is None for r in base["failed"])
    assert_invariant(prism)
    assert _signature(prism) == _signature(base)


def test_same_results_on_three_runners(portable_services, tmp_path):
    job_port, pool_port = portable_services
    base = run_job(tmp_path / "direct", sources=SOURCES)
    multi = run_job(tmp_path / "multi", sources=SOURCES,
                    beam_args=["--runner=DirectRunner", "--direct_running_mode=multi_processing",
                               "--direct_num_workers=2"])
    portable = run_job(tmp_path / "portable", sources=SOURCES,
                       beam_args=["--runner=PortableRunner", f"--job_endpoint=localhost:{job_port}",
                                  "--environment_type=EXTERNAL", f"--environment_config=localhost:{pool_port}"])
    assert base["kept"] and base["dropped"] and base["failed"]
    for res in (base, multi, portable):
        assert_invariant(res)
    assert _signature(multi) == _signature(base)
    assert _signature(portable) == _signature(base)

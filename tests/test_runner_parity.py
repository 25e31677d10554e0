"""Runner parity: the same job on the in-process DirectRunner, DirectRunner
with 2 worker processes, and Beam's PortableRunner against Beam's own Python
job service with an EXTERNAL worker pool (workers in separate processes)
gives identical kept ids, dropped ids with reasons, and funnel.  The test
starts the services itself and stops them by their own process ids."""
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
            sorted((r["id"], r["stage"], r["error_kind"]) for r in res["failed"]),
            res["funnel"]["sources"])


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

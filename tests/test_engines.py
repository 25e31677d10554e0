"""Flink and Spark, executed: Beam's Flink job server ([local], parallelism 2)
and Spark job server (local[2]), as deploy/local-engines.sh builds them, run
one combined job each (every bundled sample, planted damaged inputs, a large
multi-member WARC read in byte ranges, the fine stage with tiny models, PII and
decontamination on) and give the DirectRunner's kept, dropped and failed ids,
funnel and statistics.  The job servers are Beam 2.62.0 under the 2.77 Python
SDK, a pairing Beam does not promise (docs/CLUSTER.md): this is the guard.

Also the flags mdfs adds for these engines (pipeline/commands/engines.py): where the
jars are found, the harness log level, and the one-line failure report."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from mdfs.pipeline.commands import engines
from mdfs.pipeline.config import SAMPLES_DIR
from mdfs.pipeline.commands.engines import EngineError, prepare_engine

from helpers import assert_invariant, run_job

REPO = Path(__file__).resolve().parents[1]
ENGINES = Path(os.environ.get("MDFS_ENGINES") or REPO / ".engines")
REQUIRED = os.environ.get("MDFS_REQUIRE_ENGINES", "")


def needs(engine: str, jar: str):
    # .ci/run builds the job servers and sets MDFS_REQUIRE_ENGINES: there a missing jar fails instead of skipping
    return pytest.mark.skipif(not (ENGINES / jar).exists() and engine not in REQUIRED,
                              reason=f"no {jar} (bash deploy/local-engines.sh builds it)")


ENGINE_ARGS = {
    "flink": ["--runner=FlinkRunner", "--flink_master=[local]", "--parallelism=2"],
    "spark": ["--runner=SparkRunner", "--spark_master_url=local[2]"],
}


# --- the flags mdfs adds ------------------------------------------------------------------------

def test_jar_found_in_order_flag_then_env_then_cwd(tmp_path, monkeypatch):
    env_dir, cwd = tmp_path / "env", tmp_path / "cwd"
    (cwd / ".engines").mkdir(parents=True)
    env_dir.mkdir()
    (cwd / ".engines" / "flink-job-server.jar").write_bytes(b"")
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("MDFS_ENGINES", raising=False)
    args = prepare_engine(["--runner=FlinkRunner"])
    assert f"--flink_job_server_jar={cwd / '.engines' / 'flink-job-server.jar'}" in args
    (env_dir / "flink-job-server.jar").write_bytes(b"")
    monkeypatch.setenv("MDFS_ENGINES", str(env_dir))
    assert f"--flink_job_server_jar={env_dir / 'flink-job-server.jar'}" in prepare_engine(["--runner=FlinkRunner"])
    given = tmp_path / "mine.jar"
    given.write_bytes(b"")
    args = prepare_engine(["--runner=FlinkRunner", f"--flink_job_server_jar={given}"])
    assert [a for a in args if "job_server_jar" in a] == [f"--flink_job_server_jar={given}"]
    # a job endpoint of a running job server needs no jar
    assert not any("jar" in a for a in prepare_engine(["--runner=FlinkRunner", "--job_endpoint=localhost:8099"]))


def test_no_jar_is_refused_in_one_line_naming_the_build_script(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MDFS_ENGINES", raising=False)
    for runner in ("FlinkRunner", "SparkRunner", "PrismRunner"):
        with pytest.raises(EngineError, match="deploy/local-engines.sh") as err:
            prepare_engine([f"--runner={runner}"])
        assert "\n" not in str(err.value)
    with pytest.raises(EngineError, match="no such file"):
        prepare_engine(["--runner=SparkRunner", f"--spark_job_server_jar={tmp_path}/missing.jar"])


def test_harness_log_level_is_one_both_sdks_accept(tmp_path, monkeypatch):
    """Java's job servers parse the level as SdkHarnessOptions.LogLevel (no
    WARNING: the job failed with a bare gRPC error); Python reads WARN too."""
    import logging

    monkeypatch.setenv("MDFS_ENGINES", str(tmp_path))
    (tmp_path / "flink-job-server.jar").write_bytes(b"")

    def level(args):
        return [a.split("=", 1)[1] for a in args if a.startswith("--default_sdk_harness_log_level")]

    assert level(prepare_engine(["--runner=FlinkRunner"])) == ["WARN"]
    assert level(prepare_engine(["--runner=FlinkRunner"], debug=True)) == ["INFO"]
    assert level(prepare_engine(["--runner=FlinkRunner", "--default_sdk_harness_log_level=WARNING"])) == ["WARN"]
    assert level(prepare_engine(["--runner=DirectRunner"])) == ["WARN"]
    assert level(prepare_engine(["--runner=flink", "--default_sdk_harness_log_level=warning"])) == ["WARN"]
    assert getattr(logging, "WARN") == logging.WARNING  # how the Python harness reads it
    with pytest.raises(EngineError, match="TRACE, DEBUG, INFO, WARN, ERROR, OFF"):
        prepare_engine(["--runner=FlinkRunner", "--default_sdk_harness_log_level=CRITICAL"])


def test_a_job_service_error_is_one_line_with_the_job_servers_cause():
    """A gRPC error's str() is a dump ending in '>'; the line names the status
    and the innermost cause the job server logged."""
    import grpc

    class Inactive(grpc.RpcError, grpc.Call):  # what the job service stub raises
        def code(self):
            return grpc.StatusCode.INTERNAL

        def details(self):
            return ""

        def __str__(self):
            return "<_InactiveRpcError of RPC that terminated with:\n\tstatus = StatusCode.INTERNAL\n>"

        initial_metadata = trailing_metadata = time_remaining = cancel = add_callback = is_active = None

    engines.keep_job_server_log(False)
    log = __import__("logging").getLogger("FlinkJarJobServer")
    for line in ("[main] INFO org.apache.beam.runners.jobsubmission.JobServerDriver - JobService started",
                 "java.lang.RuntimeException: Failed to validate",
                 "\tat org.apache.beam.sdk.options.ProxyInvocationHandler.getValueFromJson(X.java:597)",
                 "Caused by: java.lang.RuntimeException: Unable to parse representation",
                 "Caused by: InvalidFormatException: Cannot deserialize value of type LogLevel from String \"X\""):
        log.info(line)
    line = engines.failure_line(Inactive())
    assert line == ('Inactive: INTERNAL (job server: InvalidFormatException: Cannot deserialize value of '
                    'type LogLevel from String "X")')
    engines.keep_job_server_log(False)  # a new job forgets the last one's lines
    assert engines.failure_line(RuntimeError("boom\nlast words")) == "RuntimeError: last words"


# --- the combined parity job --------------------------------------------------------------------

@pytest.fixture(scope="module")
def combined(tmp_path_factory, models):
    """Sources, settings and the DirectRunner's result of the combined job."""
    import gzip
    import json

    from test_runner_parity import planted_inputs
    from test_split_reading import cc_warc

    root = tmp_path_factory.mktemp("engines")
    sources = [f"common_crawl={SAMPLES_DIR}/warc/*.warc.gz", f"web_zh={SAMPLES_DIR}/web_zh/*.warc.gz",
               f"common_crawl_wet={SAMPLES_DIR}/wet/*.wet.gz", f"news={SAMPLES_DIR}/news/*.jsonl.gz",
               f"forum={SAMPLES_DIR}/forum/*.parquet", *planted_inputs(root / "in")]
    big = root / "in" / "big.warc.gz"
    cc_warc(big, 150, damaged=(40,))
    sources.append(f"big={big}")
    # an evaluation item quoting a bundled news article: decontamination drops it on every runner
    with gzip.open(f"{SAMPLES_DIR}/news/news_sample.jsonl.gz", "rt", encoding="utf-8") as fh:
        article = json.loads(fh.readline())["text"]
    (root / "eval.jsonl").write_text(json.dumps({"id": "q1", "text": article[:400]}) + "\n", encoding="utf-8")
    sets = [f"decontamination.sets={{quoted: {root / 'eval.jsonl'}}}", "sources.big.languages=[zh]",
            "read.split_bytes=65536", f"fine.fasttext_model={models / 'ft'}", f"fine.bert_model={models / 'bert'}",
            "fine.drop_labels={spam: advertisement}", "fine.thresholds={spam: 0.5}", "fine.bert.max_length=64"]
    base = run_job(root / "direct", sources=sources, sets=sets)
    funnel = base["funnel"]
    assert base["failed"] and any(r["records"] is None for r in base["failed"])
    assert funnel["sources"]["big"]["read"] == 151 and funnel["sources"]["big"]["failed"] == 1  # a damaged member
    assert sum(e["dropped_by_reason"].get("decontaminate/contaminated", 0) for e in funnel["sources"].values()) == 1
    assert "fine" in funnel["stages"] and sum(e.get("fine_decided_by", {}).get("fasttext", 0) + e.get(
        "fine_decided_by", {}).get("bert", 0) for e in funnel["sources"].values()) > 0
    return sources, sets, root, base


def _ranges_read(monkeypatch, log: Path):
    """Record which byte ranges of each file the reader is given (split, then
    tracked); the engines run the workers LOOPBACK, in this process."""
    from mdfs.pipeline.io.readers import ReadFileDoFn

    split, create_tracker = ReadFileDoFn.split, ReadFileDoFn.create_tracker

    def recording_split(self, file, restriction):
        for r in split(self, file, restriction):
            with open(log, "a") as fh:
                fh.write(f"split {file[1]} {r.start} {r.stop}\n")
            yield r

    def recording_tracker(self, restriction):
        with open(log, "a") as fh:
            fh.write(f"track {restriction.start} {restriction.stop}\n")
        return create_tracker(self, restriction)

    monkeypatch.setattr(ReadFileDoFn, "split", recording_split)
    monkeypatch.setattr(ReadFileDoFn, "create_tracker", recording_tracker)


def _check_engine(engine: str, combined, tmp_path, monkeypatch):
    from test_runner_parity import _signature, _stats

    sources, sets, root, base = combined
    monkeypatch.setenv("MDFS_ENGINES", str(ENGINES))
    log = tmp_path / "ranges.log"
    _ranges_read(monkeypatch, log)
    res = run_job(tmp_path / engine, sources=sources, sets=sets, beam_args=prepare_engine(ENGINE_ARGS[engine]))
    assert_invariant(res)
    assert _signature(res) == _signature(base)
    assert _stats(tmp_path / engine) == _stats(root / "direct")
    # the big multi-member file was cut into byte ranges, and each range was read on its own
    lines = log.read_text().splitlines()
    big = {tuple(ln.split()[2:]) for ln in lines if ln.startswith("split ") and ln.split()[1].endswith("big.warc.gz")}
    tracked = {tuple(ln.split()[1:]) for ln in lines if ln.startswith("track ")}
    assert len(big) >= 2 and big <= tracked, (big, tracked)  # ~180 kB in 64 KiB ranges


@needs("flink", "flink-job-server.jar")
def test_flink_gives_the_same_results_and_statistics(combined, tmp_path, monkeypatch):
    _check_engine("flink", combined, tmp_path, monkeypatch)


@needs("spark", "spark-job-server.jar")
def test_spark_gives_the_same_results_and_statistics(combined, tmp_path, monkeypatch):
    _check_engine("spark", combined, tmp_path, monkeypatch)


@needs("flink", "flink-job-server.jar")
def test_flink_refilter_and_dedup_against_give_the_direct_runners_results(models, tmp_path, monkeypatch):
    """`mdfs refilter` and `mdfs run --dedup-against` through the CLI (jar found
    by itself) on Flink give what they give on the DirectRunner."""
    from test_refilter import _fine_sets, _funnel, _mdfs, _outcome

    monkeypatch.setenv("MDFS_ENGINES", str(ENGINES))
    base = tmp_path / "base"
    assert _mdfs("run", "--output", base, *_fine_sets(models)) == 0
    looser = ["--set", "fine.thresholds={spam: 0.2}"]
    assert _mdfs("refilter", base, "--output", tmp_path / "rf-direct", *looser) == 0
    assert _mdfs("refilter", base, "--output", tmp_path / "rf-flink", *looser, *ENGINE_ARGS["flink"]) == 0
    assert _outcome(tmp_path / "rf-flink") == _outcome(tmp_path / "rf-direct")
    assert _funnel(tmp_path / "rf-flink") == _funnel(tmp_path / "rf-direct")
    assert _outcome(tmp_path / "rf-direct")["kept"] != _outcome(base)["kept"]  # the change changed something
    again = [*_fine_sets(models), "--dedup-against", base]
    direct_rc = _mdfs("run", "--output", tmp_path / "again-direct", *again)
    assert _mdfs("run", "--output", tmp_path / "again-flink", *again, *ENGINE_ARGS["flink"]) == direct_rc
    assert _outcome(tmp_path / "again-flink") == _outcome(tmp_path / "again-direct")
    assert _funnel(tmp_path / "again-flink") == _funnel(tmp_path / "again-direct")
    assert not _outcome(tmp_path / "again-direct")["kept"]  # every document was in the earlier run

"""The default runner is the DirectRunner's batch path, the FnApiRunner, on
every machine: Beam 2.77's DirectRunner first offers a job to Prism
(translating the graph, fetching Prism's binary from GitHub when it can),
so a machine with that network ran the default command on another engine.
mdfs builds the FnApiRunner itself (``options.job_runner``)."""
from __future__ import annotations

import gzip
import json

import pytest
from apache_beam.runners.portability import prism_runner
from apache_beam.runners.portability.fn_api_runner import fn_runner

from mdfs.pipeline.commands import cli
from mdfs.pipeline.options import JobOptions, job_runner

from helpers import real_en_texts, real_zh_texts


@pytest.fixture
def prism_offers(monkeypatch):
    """The jobs offered to Prism (recorded, then refused as a machine without
    Prism's binary refuses them: Beam falls back silently)."""
    offers = []

    def refuse(self, pipeline, options):
        offers.append(pipeline)
        raise RuntimeError("no Prism here")

    monkeypatch.setattr(prism_runner.PrismRunner, "run_pipeline", refuse)
    return offers


def _inputs(folder, files: int) -> str:
    texts = real_zh_texts()[:3] + real_en_texts()[:3]
    for f in range(files):
        rows = [{"id": f"f{f}-{i}", "text": t, "url": f"https://x.example/{f}/{i}"} for i, t in enumerate(texts)]
        (folder / f"part-{f}.jsonl.gz").write_bytes(
            gzip.compress("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()))
    return f"t={folder}/*.jsonl.gz"


@pytest.mark.parametrize("units", [False, True], ids=["one job", "units of files"])
def test_the_default_command_never_offers_the_job_to_prism(prism_offers, tmp_path, units):
    source = _inputs(tmp_path, 2)
    sets = ["--set", "run.unit_mb=0.000001" if units else "run.unit_mb=0"]
    out = tmp_path / "out"
    assert cli.main(["run", "--output", str(out), "--source", source, *sets]) == 0
    assert (out / "_SUCCESS").exists()
    total = json.loads((out / "funnel.json").read_text())["total"]
    assert total["read"] == 12 and total["invariant_ok"]
    assert prism_offers == []


@pytest.mark.parametrize("flags", [[], ["--runner=DirectRunner"], ["--runner=direct"], ["--runner=directrunner"],
                                   ["--runner=SwitchingDirectRunner"],
                                   ["--runner=apache_beam.runners.direct.direct_runner.DirectRunner"],
                                   ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]])
def test_the_direct_runner_is_the_fn_api_runner_with_the_options(flags):
    runner = job_runner(JobOptions(flags))
    assert isinstance(runner, fn_runner.FnApiRunner)
    # the options reach the workers as the DirectRunner passes them: in the provision info
    encoded = runner._provision_info.provision_info.pipeline_options
    for flag in flags:
        name, _, value = flag.lstrip("-").partition("=")
        if name != "runner":
            assert str(encoded[f"beam:option:{name}:v1"]) == value


@pytest.mark.parametrize("flags", [["--runner=PrismRunner"], ["--runner=BundleBasedDirectRunner"],
                                   ["--runner=FlinkRunner"], ["--runner=SparkRunner"],
                                   ["--runner=DataflowRunner"], ["--runner=PortableRunner"], ["--streaming"]])
def test_other_runners_are_left_to_beam(flags):
    assert job_runner(JobOptions(flags)) is None

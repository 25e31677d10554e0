"""Deployment files parse and name what the pipeline needs; the classifier
step carries the accelerator resource hint (checked in the pipeline proto)."""
from __future__ import annotations

import json
from pathlib import Path

import apache_beam as beam
import pytest
import yaml

from mdfs.pipeline.options import MdfsOptions

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"


def _option_names():
    import argparse

    parser = argparse.ArgumentParser()
    MdfsOptions._add_argparse_args(parser)
    return {("set" if a.dest == "overrides" else a.dest) for a in parser._actions if a.dest != "help"}


def test_dataflow_template_metadata_matches_options():
    meta = json.loads((DEPLOY / "dataflow" / "metadata.json").read_text())
    names = {p["name"] for p in meta["parameters"]}
    assert names == {"output", "config", "source", "set", "dedup_against", "overwrite", "debug"}
    assert names <= _option_names()
    assert not next(p for p in meta["parameters"] if p["name"] == "output")["isOptional"]


def test_dataflow_images_install_the_project():
    beam_version = beam.__version__
    for name in ("Dockerfile", "Dockerfile.gpu"):
        text = (DEPLOY / "dataflow" / name).read_text()
        assert f"apache/beam_python3.11_sdk:{beam_version}" in text
        for pkg in ("pipeline", "classifiers", "schemas"):
            assert f"COPY {pkg} ./{pkg}" in text
        assert "pip install" in text and 'ENTRYPOINT ["/opt/apache/beam/boot"]' in text
    assert "python_template_launcher" in (DEPLOY / "dataflow" / "Dockerfile").read_text()
    main = (DEPLOY / "dataflow" / "main.py").read_text()
    assert 'main(["run", *sys.argv[1:]])' in main
    cmds = (DEPLOY / "dataflow" / "commands.sh").read_text()
    assert "flex-template build" in cmds and "flex-template run" in cmds
    assert "fine.bert.accelerator=type:nvidia-l4" in cmds and "sdk_container_image" in cmds


def test_flink_manifests():
    docs = [d for f in ("flink-deployment.yaml", "job-server.yaml")
            for d in yaml.safe_load_all((DEPLOY / "flink" / f).read_text()) if d]
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert ("FlinkDeployment", "mdfs") in kinds and ("Deployment", "beam-flink-job-server") in kinds
    flink = next(d for d in docs if d["kind"] == "FlinkDeployment")
    sidecar = next(c for c in flink["spec"]["podTemplate"]["spec"]["containers"] if c["name"] == "beam-worker-pool")
    assert sidecar["args"] == ["--worker_pool"] and sidecar["ports"][0]["containerPort"] == 50000
    gpu = next(d for d in docs if d["metadata"]["name"] == "mdfs-taskmanager-gpu")
    pool = next(c for c in gpu["spec"]["template"]["spec"]["containers"] if c["name"] == "beam-worker-pool")
    assert pool["resources"]["limits"]["nvidia.com/gpu"] == 1
    job = next(d for d in docs if d["metadata"]["name"] == "beam-flink-job-server")
    image = job["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.endswith(f":{beam.__version__}") and "flink1.19" in image
    # the submit script's command line parses, and its config file passes the strict schema
    import re
    import shlex

    from mdfs.pipeline.config import load_config
    from mdfs.pipeline.options import split_flags

    submit = (DEPLOY / "flink" / "submit.sh").read_text()
    cmd = shlex.split(re.search(r"^mdfs run (.*?)(?:\n\n|$)", submit.replace("\\\n", " "), re.M | re.S).group(1))
    own, beam_args = split_flags(cmd)
    assert "--runner=PortableRunner" in beam_args and "--environment_config=localhost:50000" in beam_args
    cfg = load_config(str(REPO / own.config), own.overrides, own.source)
    assert cfg.fine.bert_model == "/models/quality-bert" and list(cfg.sources) == ["common_crawl"]


@pytest.mark.bert
def test_classifier_step_carries_accelerator_hint(tmp_path):
    """Only the RunInference step asks for a GPU."""
    from helpers import write_jsonl_gz

    from mdfs.classifiers import bert
    from mdfs.pipeline.build import build_pipeline
    from mdfs.pipeline.config import load_config

    texts = ["hello there friend", "win a free prize now", "see you at lunch", "claim your cash reward"]
    bert.train(texts * 4, [0, 1, 0, 1] * 4, ["ham", "spam"], str(tmp_path / "m"), epochs=1, hidden_size=32,
               layers=1, heads=2, vocab_size=200, max_length=32, log=lambda *_: None)
    write_jsonl_gz(tmp_path / "in.jsonl.gz", [{"id": "a", "text": "hello"}])
    cfg = load_config(sources=[f"s={tmp_path}/in.jsonl.gz"],
                      sets=[f"fine.bert_model={tmp_path / 'm'}", "fine.languages=[]", "fine.drop_labels={spam: advertisement}",
                            "fine.thresholds={spam: 0.5}", "fine.bert.accelerator=type:nvidia-l4;count:1"])
    p = beam.Pipeline()
    build_pipeline(p, cfg, str(tmp_path / "out"))
    proto = p.to_runner_api()
    envs = proto.components.environments
    with_hint = [t.unique_name for t in proto.components.transforms.values()
                 if t.environment_id in envs and any("accelerator" in k for k in envs[t.environment_id].resource_hints)]
    assert with_hint, "no transform carries the accelerator hint"
    assert all("/BERT" in name for name in with_hint), with_hint


def _pins(path: Path) -> dict[str, str]:
    from packaging.utils import canonicalize_name

    pins = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def test_worker_images_and_constraint_sets_are_lean_for_cpu_and_pinned():
    """Docker cannot build here (no engine): the images are checked statically.
    CPU images install the core with the CPU pins and carry no torch; GPU
    images install [bert] with the GPU pins; every pin satisfies pyproject."""
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    cpu, gpu = _pins(DEPLOY / "workers" / "constraints-cpu.txt"), _pins(DEPLOY / "workers" / "constraints-gpu.txt")
    assert not {n for n in cpu if n in ("torch", "transformers", "triton") or n.startswith("nvidia-")}
    assert gpu["torch"] == "2.13.0" and "transformers" in gpu and set(cpu) <= set(gpu)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for kind, pins, reqs in (("cpu", cpu, project["dependencies"]),
                             ("gpu", gpu, project["dependencies"] + project["optional-dependencies"]["bert"])):
        for req in map(Requirement, reqs):
            name = canonicalize_name(req.name)
            assert name in pins, f"constraints-{kind}.txt does not pin {name}"
            assert req.specifier.contains(pins[name], prereleases=True), f"{kind}: {name}=={pins[name]} vs {req}"
    for path, kind in ((DEPLOY / "dataflow" / "Dockerfile", "cpu"), (DEPLOY / "flink" / "Dockerfile.worker", "cpu"),
                       (DEPLOY / "dataflow" / "Dockerfile.gpu", "gpu"), (DEPLOY / "flink" / "Dockerfile.worker-gpu", "gpu")):
        text = (path).read_text()
        install = next(l for l in text.splitlines() if l.startswith("RUN pip install"))
        assert f"COPY deploy/workers/constraints-{kind}.txt" in text and f"-c deploy/workers/constraints-{kind}.txt" in install
        assert ("bert]" in install) == (kind == "gpu") and "torch" not in install and "index-url" not in install

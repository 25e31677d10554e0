"""A command line that cannot be misused silently: every mistake is refused
before anything is written (exit 2), or ends in a documented non-zero outcome."""
from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from mdfs.pipeline.config import load_config, load_defaults
from mdfs.pipeline.schema import MdfsConfig, Shingle
from mdfs.pipeline.defaults_file import defaults_of, render_defaults
from mdfs.pipeline.schema_check import ALL_KEYS, json_schema

REPO = Path(__file__).resolve().parents[1]


def mdfs(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "mdfs.pipeline.commands.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


def own_lines(stderr: str, prog: str = "mdfs run:") -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith(prog)]


@pytest.mark.parametrize("flag,hint", [("--sources=news=x", "--source"), ("--overwite", "--overwrite"),
                                       ("--sour=news=x", "--source"), ("--runer=DirectRunner", "--runner")])
def test_misspelled_flags_are_refused_before_anything_is_written(tmp_path, flag, hint):
    r = mdfs("run", "--output", tmp_path / "o", flag)
    lines = own_lines(r.stderr)
    assert r.returncode == 2 and len(lines) == 1 and f"did you mean {hint}?" in lines[0], r.stderr
    assert not (tmp_path / "o").exists() and "Traceback" not in r.stderr


@pytest.mark.parametrize("sets,message", [
    (["coarse.min_chars=100"], "unknown key coarse.min_chars (did you mean coarse.zh.min_chars?)"),
    (["coarse.min_char=100"], "unknown key coarse.min_char (did you mean coarse.zh.min_chars?)"),
    (["near_dedupe.threshold=0.7"], "unknown key near_dedupe (did you mean near_dedup?)"),
    (["sources.news.feilds={text: raw}"], "unknown key sources.news.feilds (did you mean sources.news.fields?)"),
    (["coarse.zh.min_chars=abc"], "coarse.zh.min_chars: Input should be a valid integer"),
    (["near_dedup.threshold=abc"], "near_dedup.threshold: Input should be a valid number"),
    (["near_dedup.threshold=1.5"], "near_dedup.threshold: Input should be less than or equal to 1"),
    (["fine.bert.aggregate=meen"], "fine.bert.aggregate: Input should be 'mean', 'max' or 'first'"),
    (["extract.isolation=thread"], "extract.isolation: Input should be 'subprocess' or 'inprocess'"),
    (["fine.thresholds={spam: 0.3}"], "thresholds for ['spam'] but drop_labels has only"),
    (["near_dedup.shingles={zh: {unit: char, n: 5}}"], "shingles needs a 'default' entry"),
    (["coarse.zh.min_chars.x=1"], "coarse.zh.min_chars is a value, not a section"),
    (["read.max_payload_bytes=[1"], "--set read.max_payload_bytes: value '[1' is not valid YAML"),
])
def test_configuration_mistakes_name_the_key(sets, message):
    with pytest.raises(ValueError) as err:
        load_config(sets=sets, sources=["news=x.jsonl"])
    assert message in str(err.value)


def test_config_file_mistakes(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("coarse:\n  zh: {min_chars: 10\n")
    with pytest.raises(ValueError, match=r"bad.yaml: not valid YAML at line \d+"):
        load_config(str(bad))
    warc_fields = tmp_path / "wf.yaml"
    warc_fields.write_text("sources:\n  cc: {paths: ['/d/*.warc.gz'], fields: {text: body}}\n")
    with pytest.raises(ValueError, match="sources.cc.fields: applies to jsonl and parquet sources only"):
        load_config(str(warc_fields))
    r = mdfs("run", "--output", tmp_path / "o", "--config", bad)
    assert r.returncode == 2 and len(own_lines(r.stderr)) == 1 and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()


def test_replaced_maps_say_exactly_what_the_file_says(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("fine:\n  drop_labels: {ad: advertisement}\n"
                 "near_dedup:\n  shingles: {default: {unit: char, n: 3}}\n")
    cfg = load_config(str(f))
    assert cfg.fine.drop_labels == {"ad": "advertisement"}
    assert cfg.fine.thresholds == {"ad": 0.5}, "no default threshold for the removed label"
    assert cfg.near_dedup.shingles == {"default": Shingle(unit="char", n=3)}
    merged = load_config(sets=["coarse.zh.min_chars=50"])  # sections still merge
    assert merged.coarse.zh.min_chars == 50 and merged.coarse.zh.min_han_share == 0.3


def test_defaults_yaml_is_generated_from_the_schema():
    """schema.py is the one home of each default and its reason: the committed
    defaults.yaml must be exactly what it generates (regenerate it with
    ``python -m mdfs.pipeline.defaults_file > pipeline/defaults.yaml``)."""
    committed = (REPO / "pipeline" / "defaults.yaml").read_text(encoding="utf-8")
    assert committed == render_defaults(), \
        "pipeline/defaults.yaml is stale: python -m mdfs.pipeline.defaults_file > pipeline/defaults.yaml"
    # the text reads back as the schema's values, in its key order and of the same types (20, not 20.0)
    assert json.dumps(load_defaults()) == json.dumps(defaults_of(MdfsConfig))
    MdfsConfig.model_validate(load_config().as_dict())  # every default has the right type
    assert MdfsConfig.model_validate(load_config(sources=["news=x.jsonl"]).as_dict()).run.max_failed_share == 0.1


def test_a_key_added_to_the_schema_lands_in_the_generated_file(monkeypatch):
    """The generator writes a new key with its default and its description as a comment."""
    from pydantic import Field, create_model

    from mdfs.pipeline import defaults_file
    from mdfs.pipeline.schema import Run
    from mdfs.pipeline.schema_base import section

    grown_run = create_model("Run", __base__=Run,
                             max_stragglers=(int, Field(3, description="planted: stragglers a run waits for")))
    grown = create_model("MdfsConfig", __base__=MdfsConfig, run=(grown_run, section(grown_run)))
    monkeypatch.setattr(defaults_file, "MdfsConfig", grown)
    text = defaults_file.render_defaults()
    committed = (REPO / "pipeline" / "defaults.yaml").read_text(encoding="utf-8")
    assert "max_stragglers" not in committed and text != committed  # so the generated-file test fails on it
    assert re.search(r"^  max_stragglers: 3 +# planted: stragglers a run waits for$", text, re.M), text
    assert yaml.safe_load(text)["run"] == {"max_failed_share": 0.1, "unit_mb": 64.0, "max_stragglers": 3}
    no_default = create_model("Run", __base__=Run, max_stragglers=(int, ...))  # a key without a default
    monkeypatch.setattr(defaults_file, "MdfsConfig", create_model("MdfsConfig", __base__=MdfsConfig,
                                                                  run=(no_default, section(no_default))))
    with pytest.raises(ValueError, match="Run.max_stragglers: a configuration key without a default"):
        defaults_file.render_defaults()


def test_every_key_carries_its_reason_into_the_json_schema():
    schema = json_schema(load_defaults())
    zh = schema["$defs"]["ZhRules"]["properties"]
    assert "arXiv 2311.01149" in zh["min_chars"]["description"] and zh["min_chars"]["default"] == 200
    assert "Gopher (arXiv 2112.11446" in schema["$defs"]["GopherQuality"]["description"]
    assert schema["$defs"]["SourceDefaults"]["properties"]["languages"]["default"] == ["zh", "en"]


def test_json_schema_for_editors():
    r = mdfs("config", "--schema")
    assert r.returncode == 0
    schema = json.loads(r.stdout)
    assert schema["additionalProperties"] is False
    coarse = schema["$defs"]["ZhRules"]["properties"]["min_chars"]
    assert coarse["default"] == 200 and coarse["minimum"] == 0
    assert json_schema(load_defaults())["properties"]["run"]


@pytest.fixture(scope="module")
def fasttext_spam_model(tmp_path_factory):
    """A tiny fastText model whose labels are ham/spam, not the default low/ad."""
    out = tmp_path_factory.mktemp("ft") / "model"
    r = mdfs("train-classifier", "--kind", "fasttext", "--train", REPO / "tests" / "data" / "sms_spam_train.jsonl",
             "--output", out)
    assert r.returncode == 0, r.stderr
    return out


def test_model_label_mismatch_is_refused_before_the_run(tmp_path, fasttext_spam_model):
    r = mdfs("run", "--output", tmp_path / "o", "--set", f"fine.fasttext_model={fasttext_spam_model}")
    lines = own_lines(r.stderr)
    assert r.returncode == 2 and not (tmp_path / "o").exists()
    assert any("fine.drop_labels ['ad', 'low'] are not labels of the fastText model" in ln for ln in lines), r.stderr
    r = mdfs("run", "--output", tmp_path / "o", "--set", f"fine.fasttext_model={tmp_path}/missing")
    assert r.returncode == 2 and "fine.fasttext_model: cannot load" in r.stderr and not (tmp_path / "o").exists()
    r = mdfs("config", "--set", f"fine.fasttext_model={fasttext_spam_model}", "--set", "fine.drop_labels={spam: spam}")
    assert r.returncode == 0 and yaml.safe_load(r.stdout)["fine"]["thresholds"] == {"spam": 0.5}


def test_globs_and_tokenizer_checked_before_the_run(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "x"}\n')
    r = mdfs("run", "--output", tmp_path / "o", "--source", f"a={tmp_path}/a.jsonl",
             "--source", f"b={tmp_path}/nothing-*.jsonl", "--set", f"stats.tokenizer={tmp_path}/tok")
    lines = own_lines(r.stderr)
    assert r.returncode == 2 and not (tmp_path / "o").exists()
    assert any("source b: no input file matches" in ln for ln in lines)
    assert any("stats.tokenizer: no tokenizer.json" in ln for ln in lines)


def test_a_source_whose_records_all_fail_rejects_the_run(tmp_path):
    (tmp_path / "ccnet.jsonl").write_text("".join(json.dumps({"raw_content": "正文" * 200, "url": f"u{i}"}) + "\n"
                                                  for i in range(4)))
    out = tmp_path / "o"
    r = mdfs("run", "--output", out, "--source", f"ccnet={tmp_path}/ccnet.jsonl")
    assert r.returncode == 3, r.stderr
    assert "REJECTED" in r.stderr and "raw_content" in r.stderr and "missing_field" in r.stderr
    assert not (out / "_SUCCESS").exists() and (out / "funnel.json").exists()
    rejected = json.loads((out / "_REJECTED.json").read_text())
    assert "every record failed" in rejected["reasons"][0]
    r = mdfs("funnel", out)
    assert "holds a REJECTED run" in r.stderr and r.returncode == 0
    r = mdfs("run", "--output", out, "--source", f"ccnet={tmp_path}/ccnet.jsonl")
    assert r.returncode == 2 and "already holds a rejected run" in r.stderr and "--overwrite" in r.stderr
    # fixed with the field map, the same input is accepted
    r = mdfs("run", "--output", out, "--overwrite", "--source", f"ccnet={tmp_path}/ccnet.jsonl",
             "--set", "sources.ccnet.fields={text: raw_content, url: url}", "--set", "near_dedup.enabled=false")
    assert r.returncode == 0 and (out / "_SUCCESS").exists() and not (out / "_REJECTED.json").exists(), r.stderr


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interruption_is_one_line_and_leaves_incomplete_output(tmp_path, sig, code):
    out = tmp_path / "o"
    proc = subprocess.Popen([sys.executable, "-m", "mdfs.pipeline.commands.cli", "run", "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "config.yaml").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(sig)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == code, err
    assert own_lines(err) == [f"mdfs run: interrupted; the output in {out} is incomplete (_INCOMPLETE)"]
    assert "Traceback" not in err
    assert (out / "_INCOMPLETE").exists() and not (out / "_SUCCESS").exists()
    for cmd in ("funnel", "report"):
        r = mdfs(cmd, out)
        assert r.returncode == 1 and "incomplete run" in r.stderr and "Traceback" not in r.stderr
    r = mdfs("run", "--output", out)
    assert r.returncode == 2 and "already holds an incomplete run" in r.stderr and "--overwrite" in r.stderr


# --- the documentation is true -----------------------------------------------------------------

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
TOP = tuple(MdfsConfig.model_fields)


def _key_exists(key: str) -> bool:
    parts = key.split(".")
    for i in range(len(parts)):
        if parts[i].isupper() or parts[i] in ("*", "NAME"):
            parts[i] = "*"
    key = ".".join(parts)
    if key.endswith(".*") and key[:-2] in ALL_KEYS:
        return True  # e.g. coarse.zh.* or fine.bert.*
    if key in ALL_KEYS:
        return True
    # free-form maps: sources.web_zh.paths, fine.drop_labels.low
    return any(re.fullmatch(re.escape(k).replace(r"\*", "[^.]+"), key) for k in ALL_KEYS if "*" in k) or \
        any(key.startswith(m + ".") for m in ("fine.drop_labels", "fine.thresholds", "mix.weights",
                                              "near_dedup.shingles", "decontamination.sets"))


def test_every_config_key_in_the_docs_exists():
    found = set()
    for doc in DOCS:
        for m in re.finditer(r"`(?:--set )?((?:%s)(?:\.[A-Za-z0-9_*]+)+)(?:=[^`]*)?`" % "|".join(TOP), doc.read_text()):
            found.add((doc.name, m.group(1)))
        for m in re.finditer(r"--set[ =]\"?((?:%s)(?:\.[A-Za-z0-9_*]+)+)=" % "|".join(TOP), doc.read_text()):
            found.add((doc.name, m.group(1)))
    assert len(found) > 40
    missing = sorted(f"{d}: {k}" for d, k in found if not _key_exists(k) and not k.endswith(".json"))  # files
    assert not missing, missing


def _readme_commands() -> list[list[str]]:
    text = (REPO / "README.md").read_text()
    cmds = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.split("  #")[0].strip()
            for part in re.split(r"&&", line):
                words = shlex.split(part.strip(), comments=True)
                if words[:1] == ["mdfs"]:
                    cmds.append(words[1:])
    for inline in re.findall(r"`(mdfs [^`]+)`", text):  # inline examples; usage notation ([...]) aside
        if "[" not in inline and "..." not in inline:
            cmds.append(shlex.split(inline)[1:])
    return cmds


def test_every_readme_command_line_parses(tmp_path):
    from mdfs.classifiers.cli import eval_parser, train_parser
    from mdfs.pipeline.commands.cli import config_parser, report_parser, review_parser, sample_parser
    from mdfs.pipeline.options import split_flags

    cmds = _readme_commands()
    assert {c[0] for c in cmds} >= {"run", "refilter", "report", "train-classifier", "eval-classifier"}
    yaml_blocks = re.findall(r"```yaml\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    for i, block in enumerate(yaml_blocks):  # every YAML example is a valid config
        f = tmp_path / f"example{i}.yaml"
        f.write_text(block)
        load_config(str(f))
    for cmd in cmds:
        name, args = cmd[0], cmd[1:]
        if not args and name != "run":
            continue  # a command named in prose, not an example (`mdfs review`, `mdfs train-classifier`)
        if name == "run":
            own, _beam = split_flags(args)
            load_config(own.config, own.overrides, own.source)
        elif name == "report":
            report_parser().parse_args(args)
        elif name == "config":
            config_parser().parse_args(args)
        elif name == "sample":
            sample_parser().parse_args(args)
        elif name == "review":
            review_parser().parse_args(args)
        elif name == "train-classifier":
            train_parser().parse_args(args)
        elif name == "eval-classifier":
            eval_parser().parse_args(args)
        elif name == "funnel":
            assert len(args) == 1
        elif name == "refilter":
            if not args:
                continue  # the command named in prose, not an example
            own, _beam = split_flags(args[1:])
            assert own.output and not args[0].startswith("-")
            load_config(own.config, own.overrides)
        else:
            raise AssertionError(f"README names an unknown command: mdfs {name}")


def test_job_options_views_are_made_once_and_share_values():
    """JobOptions hands out one view per class (Beam re-parses every flag per
    view_as); values set through any view are seen by the options and by every
    other view, as with Beam's own views."""
    from apache_beam.options.pipeline_options import DirectOptions, StandardOptions, TypeOptions

    from mdfs.pipeline.options import JobOptions

    opts = JobOptions(["--runner=DirectRunner", "--direct_num_workers=2"])
    assert opts.view_as(TypeOptions) is opts.view_as(TypeOptions)
    assert opts.view_as(DirectOptions).direct_num_workers == 2
    opts.view_as(StandardOptions).streaming = True
    assert opts.view_as(StandardOptions).streaming and opts.get_all_options()["streaming"] is True
    opts.view_as(DirectOptions).direct_num_workers = 3
    assert opts.get_all_options()["direct_num_workers"] == 3
    assert opts.view_as(TypeOptions).pipeline_type_check  # Beam's defaults untouched

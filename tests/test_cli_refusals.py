"""Runs that used to exit 0 having done something else than what was meant
(issue 34): each is refused before anything is written, with one line, or
does what the user meant.  Every case runs the CLI in a subprocess on tiny
inputs; the refusals stop at preflight, so no pipeline runs."""
from __future__ import annotations

import gzip
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

TRAIN = Path(__file__).resolve().parent / "data" / "sms_spam_train.jsonl"
TEXT = "这是一个用于测试的中文段落，内容足够长以通过最短长度的规则。" * 10


def mdfs(*args, cwd=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "mdfs.pipeline.commands.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd)


def one_line(r, prog="mdfs run:") -> str:
    """The one line of a refusal; at most 100 characters besides the paths it names."""
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith(prog)]
    assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert len(re.sub(r"/[^\s,;()']+", "P", lines[0])) <= 100, lines[0]
    return lines[0]


def tree(root: Path) -> dict:
    return {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*"))}


@pytest.fixture
def data(tmp_path):
    for name, n in (("one", 2), ("two", 1)):
        texts = [f"{TEXT}{name}{i}" for i in range(n)]
        ids = [f"{name}{i}" for i in range(n)]
        pq.write_table(pa.table({"id": ids, "text": texts, "doc_id": ids, "content": texts}),
                       tmp_path / f"{name}.parquet")
    (tmp_path / "m.jsonl").write_text("".join(json.dumps({"id": str(i), "text": TEXT, "lnk2": "u"}) + "\n"
                                              for i in range(3)))
    (tmp_path / "ev.jsonl").write_text(json.dumps({"id": "q1", "question": TEXT[:40], "answer": "B"}) + "\n")
    return tmp_path


def test_overwrite_never_removes_what_the_run_reads(data):
    out = data / "selfin"
    (out / "kept").mkdir(parents=True)
    (data / "two.parquet").rename(out / "kept" / "part-0.parquet")
    (out / "_SUCCESS").write_text("{}")
    before = tree(data)
    r = mdfs("run", "--output", out, "--overwrite", "--source", f"x={out}/kept/*.parquet")
    line = one_line(r)
    assert f"--overwrite would remove {out}/kept, which holds {out}/kept/part-0.parquet (source x)" in line
    assert tree(data) == before


def test_a_folder_mdfs_did_not_write_is_refused_even_with_overwrite(data):
    notes = data / "notes"
    notes.mkdir()
    (notes / "notes.txt").write_text("mine")
    r = mdfs("run", "--output", notes, "--overwrite", "--source", f"x={data}/m.jsonl")
    assert f"mdfs run: {notes} holds files mdfs did not write (notes.txt); use a new or empty folder" == one_line(r)
    assert tree(notes) == {"notes.txt": 4}


def test_train_classifier_does_not_replace_a_model_or_a_foreign_folder(data):
    model = data / "ft"
    model.mkdir()
    (model / "notes.txt").write_text("mine")
    r = mdfs("train-classifier", "--kind", "fasttext", "--train", TRAIN, "--output", model, "--overwrite")
    assert "holds files mdfs did not write (notes.txt)" in one_line(r, "mdfs train-classifier:")
    (model / "notes.txt").unlink()
    (model / "labels.json").write_text('{"kind": "fasttext"}')
    (model / "train.jsonl").write_text(TRAIN.read_text())
    r = mdfs("train-classifier", "--kind", "fasttext", "--train", model / "train.jsonl", "--output", model)
    assert "already holds a model; pass --overwrite" in one_line(r, "mdfs train-classifier:")
    r = mdfs("train-classifier", "--kind", "fasttext", "--train", model / "train.jsonl", "--output", model,
             "--overwrite")
    assert "which holds" in one_line(r, "mdfs train-classifier:") and (model / "train.jsonl").is_file()


@pytest.mark.parametrize("sets,message", [
    (["sources.x.languages=[cn]"], "sources.x.languages: 'cn' is unknown to the language-ID model "
                                   "(did you mean zh?)"),
    (["sources.x.languages=[chinese]"], "(did you mean zh?)"),
    (["sources.x.fields={id: doc_id, text: content, url: lnk}"], "fields.url: no 'lnk' in"),
    (["sources.x.fields={text: body}"], "fields.text: no 'body' in"),
    (["mix.weights={webzh: 0.5}"], "mix.weights: 'webzh' is not a source of this run (sources: x)"),
    (["decontamination.sets.ev={paths: [ev.jsonl], fields: [question, answr]}"],
     "decontamination.sets.ev.fields: no row of"),
])
def test_names_are_checked_against_what_exists(data, sets, message):
    """A glob without a folder part (*.parquet) matches in the working directory:
    the one refusal is the named mistake, not 'no input file matches'."""
    args = [a for s in sets for a in ("--set", s)]
    r = mdfs("run", "--output", "o", "--source", "x=*.parquet", *args, cwd=data)
    assert message in one_line(r)
    assert not (data / "o").exists()


def test_named_fields_are_checked_in_gzipped_jsonl(data):
    (data / "g.jsonl.gz").write_bytes(b"".join(gzip.compress((json.dumps({"id": str(i), "text": TEXT}) + "\n")
                                                            .encode()) for i in range(3)))
    r = mdfs("run", "--output", "o", "--source", "x=g.jsonl.gz", "--set", "sources.x.fields={text: text, url: lnk}",
             cwd=data)
    assert f"source x: fields.url: no 'lnk' in {data}/g.jsonl.gz (it has: id, text)" in one_line(r)


def test_default_fields_stay_optional_and_are_noted_once(data):
    r = mdfs("run", "--output", "o", "--source", "x=m.jsonl", "--set", "sources.x.languages=[cn]", cwd=data)
    notes = [ln for ln in r.stderr.splitlines() if ln.startswith("mdfs: source x:")]
    assert notes == [f"mdfs: source x: no url, date in {data}/m.jsonl: no URL block list; no date rules"]
    assert "'cn'" in one_line(r)


@pytest.mark.parametrize("source,message", [
    ("x=m", "source x: {d}/m is a folder; name its files"),
    ("x=plain.json", "source x: cannot tell the format of {d}/plain.json from its name; rename it or set"),
])
def test_folders_and_unknown_suffixes_are_refused_at_preflight(data, source, message):
    (data / "m").mkdir()
    (data / "plain.json").write_text("{}\n")
    r = mdfs("run", "--output", "o", "--source", source, cwd=data)
    assert message.format(d=data) in one_line(r)
    assert not (data / "o").exists()


@pytest.fixture
def finished(tmp_path):
    """A run directory as `mdfs report` sees it before building the report."""
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "_SUCCESS").write_text("{}")
    (tmp_path / "r" / "funnel.json").write_text(json.dumps({"sources": {"web_zh": {}, "news": {}}}))
    return tmp_path / "r"


@pytest.mark.parametrize("flags,message", [
    (["--weight", "webzh=0.5"], "mdfs report: --weight: 'webzh' is not a source of this run "
                                "(did you mean web_zh?)"),
    (["--weight", "web_zh=0.7", "--weight", "news=0.6"], "the weights add up to 1.3, more than 1"),
    (["--model-params", "-5"], "expected a number > 0, got '-5'"),
    (["--budget-tokens", "5", "--model-params", "3"], "not allowed with argument --budget-tokens"),
])
def test_report_flags_are_checked(finished, flags, message):
    r = mdfs("report", finished, *flags)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (finished / "report").exists()


def test_sigint_while_the_report_is_written_is_one_line(tmp_path):
    out = tmp_path / "o"
    proc = subprocess.Popen([sys.executable, "-m", "mdfs.pipeline.commands.cli", "run", "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not (out / "report").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, "the run finished before the report could be interrupted"
    os.kill(proc.pid, signal.SIGINT)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 130, err
    assert [ln for ln in err.splitlines() if ln.startswith("mdfs run:")] == [
        f"mdfs run: interrupted; the output in {out} is incomplete (_INCOMPLETE)"]
    assert "Traceback" not in err and (out / "_INCOMPLETE").exists() and not (out / "_SUCCESS").exists()


def test_funnel_tables_fit_80_columns_without_breaking_a_source_name():
    from rich.console import Console

    from mdfs.pipeline.funnel import render_funnel

    stages = ["extract", "coarse", "decontaminate", "pii", "exact_dedup", "near_dedup", "fine"]
    names = ["common_crawl", "web_zh", "common_crawl_wet", "news", "forum"]
    entry = {"read": 123456, "kept": 65432, "dropped": 54321, "failed": 3703, "invariant_ok": True,
             "skipped_records": {"request": 61}, "after_stage": {s: 123456 for s in stages},
             "dropped_by_reason": {"coarse/language": 54321}, "failed_by_error": {"read/decode_error": 3703}}
    funnel = {"stages": stages, "sources": {n: entry for n in names},
              "total": {k: entry[k] for k in ("read", "kept", "dropped", "failed", "invariant_ok")}}
    console = Console(width=80, record=True, force_terminal=False)
    render_funnel(funnel, console)
    text = console.export_text()
    assert max(len(ln) for ln in text.splitlines()) <= 80
    first_cells = {ln.split("│")[1].strip() for ln in text.splitlines() if ln.startswith("│")}
    assert first_cells == {*names, "total"}  # every source name whole, in each table
    assert "decontam: decontaminate" in text


def _children(pid: int) -> list[int]:
    """Child processes, started by any thread (each thread's task lists its own)."""
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads the process tree from /proc")
@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_to_the_whole_process_group_with_worker_processes(tmp_path, sig, code):
    """A terminal's Ctrl-C reaches every worker too; each would print its traceback."""
    out = tmp_path / "o"
    proc = subprocess.Popen([sys.executable, "-m", "mdfs.pipeline.commands.cli", "run", "--output", str(out),
                             "--direct_running_mode=multi_processing", "--direct_num_workers=2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 300
    while len(_children(proc.pid)) < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(2.0)  # the workers are processing
    assert proc.poll() is None and len(_children(proc.pid)) >= 2, "no worker processes to interrupt"
    os.killpg(proc.pid, sig)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == code, err
    assert [ln for ln in err.splitlines() if ln.startswith("mdfs run:")] == [
        f"mdfs run: interrupted; the output in {out} is incomplete (_INCOMPLETE)"]
    assert "Traceback" not in err and "ERROR" not in err and "CRITICAL" not in err, err
    assert (out / "_INCOMPLETE").exists() and not (out / "_SUCCESS").exists()


def test_sample_does_not_replace_a_labelled_sample(finished):
    review = finished / "review"
    review.mkdir()
    (review / "sample.jsonl").write_text('{"item": "news/1"}\n')
    r = mdfs("sample", finished)
    assert "already holds a sample; pass --overwrite" in one_line(r, "mdfs sample:")
    (review / "labels.jsonl").write_text('{"item": "news/1", "label": "high"}\n')
    before = tree(finished)
    r = mdfs("sample", finished, "--overwrite")
    assert "would replace the sample that" in one_line(r, "mdfs sample:")
    assert tree(finished) == before


def test_overwrite_keeps_the_refiltered_run_models_and_earlier_runs(tmp_path):
    """prepare_output as `mdfs refilter` and `mdfs run` call it: every kind of input is kept."""
    from mdfs.pipeline.config import load_config
    from mdfs.pipeline.io.output_guard import read_paths
    from mdfs.pipeline.commands.run import prepare_output

    out = tmp_path / "out"
    for part in ("kept", "candidates", "dedup_state"):
        (out / part).mkdir(parents=True)
    (out / "_SUCCESS").write_text("{}")
    (out / "kept" / "model.bin").write_text("m")
    cfg = load_config(sets=[f"fine.fasttext_model={out / 'kept' / 'model.bin'}"], dedup_against=[str(out / "dedup_state")])
    for what, reads in [("fine.fasttext_model", read_paths(cfg)[:1]), ("--dedup-against", read_paths(cfg)[1:]),
                        ("the run being refiltered", [("the run being refiltered", str(out / "candidates"))])]:
        before = tree(out)
        with pytest.raises(FileExistsError, match=f"--overwrite would remove .*\\({re.escape(what)}\\)"):
            prepare_output(str(out), True, reads)
        assert tree(out) == before
    prepare_output(str(out), True, [("source x", str(tmp_path / "elsewhere.jsonl"))])
    assert tree(out) == {}

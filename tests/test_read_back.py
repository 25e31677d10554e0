"""Everything mdfs reads back besides the corpus (issue #39): paths named by
index rows stay inside warc_root; damaged models, dedup state, candidate
stores, funnels, configurations and evaluation sets are refused in one line
naming the file; user PII patterns and validators are bounded; counting stays
exact under a damaged index batch and symlink loops.  The last test tampers a
real run directory at random and calls each reading command's checks."""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from helpers import make_source, read_section
from test_cc_index import CC_SAMPLE, REL, run_dofn, sample_index

from mdfs.classifiers.bert import ModelError
from mdfs.pipeline.commands.cli import main as mdfs_main
from mdfs.pipeline.io.readers import FetchIndexedDoFn, expand_pattern
from mdfs.pipeline.io.readers import cc_index as cci
from mdfs.pipeline.io.readback import ReadBackError, confine, PathEscape


# --- 1. paths from data --------------------------------------------------------------------

@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    """warc_root with the sample WARC at REL, and the same file outside the root
    (were it opened, its records would be read: a refusal cannot be a read error)."""
    top = tmp_path_factory.mktemp("confine")
    root, outside = top / "root", top / "outside"
    for base in (root, outside):
        (base / os.path.dirname(REL)).mkdir(parents=True)
        shutil.copy(CC_SAMPLE, base / REL)
    os.symlink(outside / REL, root / "link.warc.gz")                 # a file link pointing out
    os.symlink(outside, root / "linkdir")                            # a folder link pointing out
    os.symlink(root / REL, root / "alias.warc.gz")                   # a link that stays inside
    good, _ = sample_index()
    return {"root": root, "outside": outside, "row": good[0]}


HOSTILE_NAMES = [
    lambda m: "../outside/" + REL,
    lambda m: "crawl-data/../../outside/" + REL,
    lambda m: str(m["outside"] / REL),                               # absolute
    lambda m: "file://" + str(m["outside"] / REL),
    lambda m: "s3://bucket/" + REL,
    lambda m: "https://data.commoncrawl.org/" + REL,
    lambda m: "C:/" + REL,
    lambda m: "%2e%2e/outside/" + REL,                                # encoded dots
    lambda m: "..%2Foutside%2F" + REL,                                # encoded separators
    lambda m: "%252e%252e%252foutside/" + REL,                        # encoded twice
    lambda m: "crawl-data\\..\\..\\outside\\x.warc.gz",
    lambda m: "link.warc.gz",
    lambda m: "linkdir/" + REL,
    lambda m: "",
]


def _fetch(mirror, names: list[str], monkeypatch):
    fn = FetchIndexedDoFn("cc", make_source(format="cc_index", warc_root=str(mirror["root"])), read_section())
    opened = []
    real_handle = FetchIndexedDoFn._handle

    def spy(self, path):
        opened.append(path)
        return real_handle(self, path)

    monkeypatch.setattr(FetchIndexedDoFn, "_handle", spy)
    fn.setup()
    row = mirror["row"]
    outs = []
    for i, name in enumerate(names):
        r = cci.IndexRow("cc", "index.parquet", i, row["url"], name, row["warc_record_offset"],
                         row["warc_record_length"])
        outs.append(run_dofn(fn, r))
    return outs, opened


def test_no_index_row_opens_a_file_outside_warc_root(mirror, monkeypatch):
    names = [make(mirror) for make in HOSTILE_NAMES]
    outs, opened = _fetch(mirror, names + [REL, "alias.warc.gz"], monkeypatch)
    for i, (name, out) in enumerate(zip(names, outs)):
        assert not out["main"] and not out["dropped"] and len(out["failed"]) == 1, name
        f = out["failed"][0]
        assert f.error_kind == "path_outside_root", (name, f.error_kind, f.message)
        assert f"index.parquet row {i}" in f.message, f.message
    real_root = os.path.realpath(mirror["root"])
    assert opened and all(p.startswith(real_root + "/") for p in opened), opened
    assert len(outs[-2]["main"]) == 1 and len(outs[-1]["main"]) == 1, "paths inside the root are read"


@pytest.mark.parametrize("name", ["a/b.warc.gz", "x.warc.gz", "crawl-data/CC/seg-1.2/warc/f%3Dx.warc.gz"])
def test_plain_relative_names_are_joined(tmp_path, name):
    assert confine(str(tmp_path), name) == os.path.realpath(tmp_path / name)
    assert confine("s3://bucket/prefix/", name) == "s3://bucket/prefix/" + name


def test_remote_roots_are_checked_by_name(tmp_path):
    for name in ("../x.warc.gz", "/x.warc.gz", "gs://other/x.warc.gz", "%2e%2e/x.warc.gz"):
        with pytest.raises(PathEscape):
            confine("s3://bucket/prefix", name)


# --- 5. counting ---------------------------------------------------------------------------

def test_a_batch_failing_half_way_is_counted_once(tmp_path):
    """A row whose offset is not a number fails its batch after other rows of
    it were selected: the batch's rows are one dead letter, counted once."""
    rows = [{"url": f"http://x.example/{i}", "fetch_status": 200, "content_mime_detected": "text/html",
             "content_languages": "zho", "warc_filename": "f.warc.gz", "warc_record_offset": str(i * 100),
             "warc_record_length": "100"} for i in range(20)]
    rows[9]["warc_record_offset"] = "not a number"
    path = tmp_path / "index.parquet"
    pq.write_table(pa.table({k: [r[k] for r in rows] for k in rows[0]}), path, row_group_size=10)
    events = list(cci.iter_index(pq.ParquetFile(path), cci.Selection.of(make_source(format="cc_index", warc_root="unused"))))
    selected = [e for e in events if e[0] == cci.SELECTED]
    bad = [e for e in events if e[0] == cci.BAD_FILE]
    assert [e[1] for e in selected] == list(range(10, 20)), "the damaged group's rows are not selected"
    assert len(bad) == 1 and bad[0][1] == 10
    assert len(selected) + sum(e[1] for e in bad) + sum(e[2] for e in events if e[0] == cci.NOT_SELECTED) == 20


def test_a_symlink_loop_under_double_star_reads_each_file_once(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.jsonl").write_text('{"text": "x"}\n')
    os.symlink("..", tmp_path / "d" / "loop")                       # d/loop/d/loop/... to the link depth
    os.symlink(tmp_path / "d" / "a.jsonl", tmp_path / "alias.jsonl")  # the same file by another name
    files, unreadable = expand_pattern(f"{tmp_path}/**/*.jsonl")
    assert [p for p, _ in files] == [str(tmp_path / "d" / "a.jsonl")]
    assert unreadable == []


def test_two_patterns_reaching_one_file_through_a_link_read_it_once(tmp_path):
    import apache_beam as beam
    from apache_beam.testing.util import assert_that, equal_to

    from mdfs.pipeline.io.readers import match_files

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.jsonl").write_text('{"text": "x"}\n')
    (tmp_path / "d" / "b.jsonl").write_text('{"text": "y"}\n')
    os.symlink(tmp_path / "d", tmp_path / "mirror")                  # the same folder by another name
    patterns = [("s", f"{tmp_path}/d/*.jsonl"), ("s", f"{tmp_path}/mirror/a.jsonl"), ("t", f"{tmp_path}/mirror/*")]
    with beam.Pipeline() as p:
        out = match_files(p, patterns)
        assert_that(out, equal_to([("s", str(tmp_path / "d" / "a.jsonl"), 14), ("s", str(tmp_path / "d" / "b.jsonl"), 14),
                                   ("t", str(tmp_path / "mirror" / "a.jsonl"), 14),
                                   ("t", str(tmp_path / "mirror" / "b.jsonl"), 14)]))


# --- 2. models -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fasttext_model(tmp_path_factory):
    from mdfs.classifiers.data import read_jsonl
    from mdfs.classifiers.fasttext_model import train

    root = tmp_path_factory.mktemp("ft")
    data = read_jsonl(str(Path(__file__).resolve().parent / "data" / "sms_spam_train.jsonl"))
    train(data.texts[:400], data.labels[:400], str(root / "ft"), data.label_names, epoch=2, dim=8)
    return root / "ft"


def _damaged(model: Path, tmp_path: Path, data: bytes, keep_record: bool) -> Path:
    copy = tmp_path / "m"
    shutil.copytree(model, copy)
    (copy / "model.bin").write_bytes(data)
    if not keep_record:
        meta = json.loads((copy / "labels.json").read_text())
        meta.pop("files")
        (copy / "labels.json").write_text(json.dumps(meta))
    return copy


@pytest.mark.parametrize("case, keep_record, message", [
    ("half", True, "training recorded"), ("same_size_random", True, "SHA-256 differs"),
    ("minus_10", False, "does not load completely"), ("random", False, "not a fastText model")])
def test_a_damaged_fasttext_model_is_refused(fasttext_model, tmp_path, case, keep_record, message):
    from mdfs.classifiers.fasttext_model import FastTextClassifier

    whole = (fasttext_model / "model.bin").read_bytes()
    data = {"half": whole[:len(whole) // 2], "same_size_random": os.urandom(len(whole)),
            "minus_10": whole[:-10], "random": os.urandom(4096)}[case]
    with pytest.raises(ModelError, match=message):
        FastTextClassifier(str(_damaged(fasttext_model, tmp_path, data, keep_record)))


def test_models_are_verified_or_reported_unverified(fasttext_model, tmp_path, caplog):
    from mdfs.classifiers.fasttext_model import FastTextClassifier

    assert FastTextClassifier(str(fasttext_model)).verified
    meta = json.loads((fasttext_model / "labels.json").read_text())
    assert meta["files"]["model.bin"]["bytes"] == (fasttext_model / "model.bin").stat().st_size
    foreign = _damaged(fasttext_model, tmp_path, (fasttext_model / "model.bin").read_bytes(), keep_record=False)
    assert FastTextClassifier(str(foreign)).verified is False


def test_eval_refuses_a_damaged_model_in_one_line_and_writes_nothing(fasttext_model, tmp_path, capsys):
    bad = _damaged(fasttext_model, tmp_path, os.urandom(5000), keep_record=False)
    test = Path(__file__).resolve().parent / "data" / "sms_spam_train.jsonl"
    from mdfs.classifiers.cli import cmd_eval

    out = tmp_path / "eval.json"
    assert cmd_eval(["--model", str(bad), "--test", str(test), "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad / "model.bin") in err[0], err
    assert not out.exists()


def test_a_missing_model_says_not_found_first(tmp_path):
    from mdfs.pipeline.config import load_config
    from mdfs.pipeline.commands.run import UserError, preflight

    cfg = load_config(sets=[f"fine.fasttext_model={tmp_path / 'nowhere'}"])
    with pytest.raises(UserError) as exc:
        preflight(cfg, str(tmp_path / "out"), sources=False)
    lines = str(exc.value).splitlines()
    assert "not found" in lines[0] and not any("records no training languages" in x for x in lines), lines


def test_a_damaged_language_id_model_is_refused_at_preflight(tmp_path):
    from mdfs.classifiers.langid import DEFAULT_LID_MODEL
    from mdfs.pipeline.config import load_config
    from mdfs.pipeline.commands.run import UserError, preflight

    cut = tmp_path / "lid.ftz"
    cut.write_bytes(Path(DEFAULT_LID_MODEL).read_bytes()[:-100])
    cfg = load_config(sets=[f"coarse.langid.model={cut}"])
    with pytest.raises(UserError) as exc:
        preflight(cfg, str(tmp_path / "out"), sources=False)
    assert str(exc.value) == f"coarse.langid.model: {cut}: does not load completely " \
                             f"({cut.stat().st_size:,} bytes, the model it holds needs " \
                             f"{Path(DEFAULT_LID_MODEL).stat().st_size:,}; cut short?)"


@pytest.mark.bert
def test_bert_weights_are_checked(tmp_path):
    from transformers import BertConfig, BertForSequenceClassification

    from mdfs.classifiers.bert import verify_weights
    from mdfs.classifiers.integrity import record

    model = BertForSequenceClassification(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                                     num_attention_heads=2, intermediate_size=16))
    model.save_pretrained(str(tmp_path), safe_serialization=True)
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a"]))
    weights = tmp_path / "model.safetensors"
    assert verify_weights(tmp_path) is False, "no record: opens completely, unverified"
    record(tmp_path / "mdfs_classifier.json", [weights])
    assert verify_weights(tmp_path) is True
    weights.write_bytes(weights.read_bytes()[:-64])
    with pytest.raises(ModelError, match="training recorded"):
        verify_weights(tmp_path)
    (tmp_path / "mdfs_classifier.json").unlink()
    with pytest.raises(ModelError, match="does not load completely"):
        verify_weights(tmp_path)


# --- 4. pii.custom ---------------------------------------------------------------------------

@pytest.mark.parametrize("pattern", [r"(a+)+$", r"(\w+\s?)*$", r"(.*a){20}", r"x(?=(\d+)+)"])
def test_nested_quantifiers_are_refused_at_preflight(pattern, tmp_path):
    from mdfs.pipeline.config import load_config
    from mdfs.pipeline.commands.run import UserError, preflight

    cfg = load_config(sets=[f"pii.custom=[{{type: t, pattern: '{pattern}'}}]"])
    with pytest.raises(UserError, match="backtrack catastrophically"):
        preflight(cfg, str(tmp_path / "out"), sources=False)


@pytest.mark.parametrize("pattern", [r"EMP-\d{6}", r"(?:\d{3}-){2}\d{4}", r"[a-z]+(\.[a-z]+)*@x\.com",
                                     r"(\w+@)+", r"(?>a+)+", r"(a++)+b"])
def test_safe_patterns_pass(pattern):
    from mdfs.pipeline.stages.pii_custom import nested_quantifier

    assert nested_quantifier(pattern) is None


@pytest.fixture
def validators(tmp_path, monkeypatch):
    (tmp_path / "my_validators.py").write_text(
        "import time\n"
        "def block(text):\n    time.sleep(3600)\n"
        "def last_even(text):\n    return int(text[-1]) % 2 == 0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr("mdfs.pipeline.stages.pii_custom.CUSTOM_BUDGET_S", 0.5)


def _pii_outcomes(custom: list, texts: list[str]):
    from mdfs.pipeline.config import load_config
    from mdfs.pipeline.stages.pii import PiiDoFn
    from mdfs.pipeline.records import Document
    from mdfs.pipeline.schema import CustomPii, PiiTypes

    base = load_config(sources=["s=x.jsonl"])
    email_only = PiiTypes(email=True, ip=False, id_number=False, phone=False, bank_card=False, account=False)
    cfg = base.pii.model_copy(update={"enabled": True, "types": email_only, "phone_regions": ["cn"],
                                      "custom": [CustomPii(**c) for c in custom]})
    fn = PiiDoFn(cfg, base.sources)
    fn.setup()
    out = []
    try:
        for i, t in enumerate(texts):
            doc = Document(key=f"{i:032x}", id=str(i), source="s", text=t)
            out += [getattr(o, "value", o) for o in fn.process(doc)]
    finally:
        fn.teardown()
    return out


def test_a_blocking_validator_is_a_dead_letter_and_the_stage_goes_on(validators):
    t0 = time.monotonic()
    out = _pii_outcomes([{"type": "emp", "pattern": r"EMP-\d{6}", "validator": "my_validators:block"}],
                        ["工号 EMP-123456", "nothing here", "工号 EMP-654321"])
    assert time.monotonic() - t0 < 10
    kinds = [getattr(o, "error_kind", None) for o in out]
    assert kinds == ["pii_timeout", None, "pii_timeout"], kinds


def test_a_backtracking_pattern_is_a_dead_letter_and_a_validator_still_decides(validators):
    out = _pii_outcomes([{"type": "aa", "pattern": r"(a|aa)+$"},  # exponential, not caught at preflight
                         {"type": "emp", "pattern": r"EMP-\d{6}", "validator": "my_validators:last_even"}],
                        ["a" * 40 + "!", "EMP-123456 EMP-123457"])
    assert getattr(out[0], "error_kind", None) == "pii_timeout"
    assert out[1].text == "<EMP> EMP-123457" and out[1].pii_counts == {"emp": 1}


# --- 6. evaluation sets ----------------------------------------------------------------------

def test_evaluation_sets_long_fields_and_refusals_name_the_file(tmp_path):
    from mdfs.pipeline.stages.decontaminate.items import _rows

    big = tmp_path / "long.csv"
    big.write_text('question,answer\n"' + "长" * 200_000 + '",A\n', encoding="utf-8")
    assert [(n, len(r["question"])) for n, r in _rows(str(big))] == [(2, 200_000)]
    cases = {"png.csv": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 10, "gbk.jsonl": '{"q": "中文"}\n'.encode("gbk"),
             "cut.jsonl.gz": b"\x1f\x8b\x08\x00\x00\x00\x00\x00", "cut.parquet": b"PAR1\x00\x01"}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ValueError) as exc:
            list(_rows(str(tmp_path / name)))
        assert str(tmp_path / name) in str(exc.value) and "\n" not in str(exc.value)


def test_classifier_sets_that_are_not_utf8_name_the_file(tmp_path):
    from mdfs.classifiers.data import DataError, read_jsonl

    (tmp_path / "gbk.jsonl").write_bytes('{"text": "好", "label": "a"}\n'.encode("utf-8")
                                         + '{"text": "中文", "label": "b"}\n'.encode("gbk"))
    with pytest.raises(DataError, match=r"gbk.jsonl:2: not UTF-8"):
        read_jsonl(str(tmp_path / "gbk.jsonl"))
    (tmp_path / "u16.jsonl").write_bytes('{"text": "x", "label": "a"}\n'.encode("utf-16"))
    with pytest.raises(DataError, match="u16.jsonl: a binary file"):
        read_jsonl(str(tmp_path / "u16.jsonl"))


# --- 3. an earlier run read back ---------------------------------------------------------------

@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("readback") / "run"
    assert mdfs_main(["run", "--output", str(out), "--set", "output.candidates=true"]) == 0
    return out


def _copy(run_dir: Path, tmp: Path) -> Path:
    dst = tmp / f"t{len(list(tmp.iterdir()))}"
    shutil.copytree(run_dir, dst)
    return dst


def _first(folder: Path) -> Path:
    return sorted(folder.glob("*.parquet"))[0]


def _rewrite(path: Path, change) -> None:
    pq.write_table(change(pq.read_table(path)), path)


def _set_column(name, values_of):
    def change(t):
        i = t.schema.get_field_index(name)
        return t.set_column(i, pa.field(name, t.schema.field(name).type), values_of(t.column(name)))
    return change


def test_damaged_dedup_state_is_refused_at_preflight(run_dir, tmp_path):
    from mdfs.pipeline.config import load_config
    from mdfs.pipeline.stages.dedup_state import check_against

    cfg = load_config()
    assert check_against(cfg, str(run_dir)) == []
    state = lambda d: _first(d / "dedup_state")  # noqa: E731
    damages = {
        "unreadable Parquet": lambda d: state(d).write_bytes(state(d).read_bytes()[:-40]),
        "holds nulls": lambda d: _rewrite(state(d), _set_column(
            "key", lambda c: pa.array([None] + c.to_pylist()[1:], pa.string()))),
        "a signature of 1020 bytes": lambda d: _rewrite(state(d), _set_column(
            "signature", lambda c: pa.array([c[0].as_py()[:-4]] + c.to_pylist()[1:], pa.binary()))),
        "not JSON": lambda d: (d / "dedup_state" / "_params.json").write_text('{"version": 1, "sig'),
        "signature is [], not dict": lambda d: (d / "dedup_state" / "_params.json").write_text(
            json.dumps({"version": 1, "exact_normalisation": "x", "signature": [], "text": {}})),
        "no column 'text_hash'": lambda d: _rewrite(state(d), lambda t: t.drop(["text_hash"])),
    }
    for why, damage in damages.items():
        d = _copy(run_dir, tmp_path)
        damage(d)
        problems = check_against(cfg, str(d))
        assert len(problems) == 1 and why in problems[0] and "\n" not in problems[0], (why, problems)


def _refilter_err(run: Path, out: Path, capsys) -> list[str]:
    assert mdfs_main(["refilter", str(run), "--output", str(out)]) == 2
    assert not out.exists()
    return capsys.readouterr().err.strip().splitlines()


BOMB = "".join(f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))


@pytest.mark.parametrize("damage, why", [
    (lambda d: _first(d / "candidates" / "documents").write_bytes(b"PAR1"), "unreadable Parquet"),
    (lambda d: _rewrite(_first(d / "candidates" / "documents"), lambda t: t.drop(["signals"])), "no column 'signals'"),
    (lambda d: _rewrite(_first(d / "candidates" / "documents"), _set_column(
        "token_count", lambda c: pa.array([None] * len(c), pa.int64()))), "holds nulls"),
    (lambda d: _rewrite(_first(d / "dropped"), lambda t: t.set_column(
        t.schema.get_field_index("offset"), "offset", t.column("offset").cast(pa.string()))), "column 'offset' is string"),
    (lambda d: (d / "funnel.json").write_text('{"sources": {"news": []}}'), "sources.news is list"),
    (lambda d: (d / "funnel.json").write_text((d / "funnel.json").read_text()[:300]), "not JSON"),
    (lambda d: (d / "config.yaml").write_text('a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]\n' + BOMB),
     "alias bomb"),
    (lambda d: (d / "config.yaml").write_text((d / "config.yaml").read_text().replace("coarse:", "coarse: 3\nx:", 1)),
     "config.yaml"),
    (lambda d: (d / "stats" / "pipeline_stats.json").write_text('{"stages": {"news": {"read": {"documents": "9"}}}}'),
     "pipeline_stats.json"),
])
def test_damaged_refilter_inputs_are_refused_in_one_line(run_dir, tmp_path, capsys, damage, why):
    d = _copy(run_dir, tmp_path)
    damage(d)
    err = _refilter_err(d, tmp_path / "out", capsys)
    assert len(err) == 1 and why in err[0], err


def test_files_of_a_run_may_not_point_out_of_it(run_dir, tmp_path, capsys):
    d = _copy(run_dir, tmp_path)
    target = _first(d / "candidates" / "documents")
    shutil.move(target, tmp_path / "elsewhere.parquet")
    os.symlink(tmp_path / "elsewhere.parquet", target)
    err = _refilter_err(d, tmp_path / "out", capsys)
    assert len(err) == 1 and "outside the run directory" in err[0], err


# --- 7. a real run directory tampered at random ----------------------------------------------------

TAMPERABLE = ["config.yaml", "funnel.json", "stats/pipeline_stats.json", "dedup_state/_params.json",
              "dedup_state/*", "candidates/documents/*", "dropped/*", "failed/*"]


def _tamper(d: Path, target: str, action: str, fraction: float, pick: int) -> None:
    path = sorted(d.glob(target.replace("*", "*.parquet")))[0] if "*" in target else d / target
    if action == "truncate":
        data = path.read_bytes()
        path.write_bytes(data[:int(len(data) * fraction)])
    elif path.suffix == ".parquet":
        t = pq.read_table(path)
        name = t.schema.names[pick % len(t.schema.names)]
        if action == "remove":
            t = t.drop([name])
        else:
            t = t.set_column(t.schema.get_field_index(name), name, pa.array([json.dumps(str(v)) for v in
                                                                                t.column(name).to_pylist()]))
        pq.write_table(t, path)
    else:
        import yaml

        doc = yaml.safe_load(path.read_text()) if path.suffix == ".yaml" else json.loads(path.read_text())
        node = doc
        for _ in range(pick % 4):  # down a few levels, to the pick-th key
            keys = sorted(node) if isinstance(node, dict) else []
            if not keys or not isinstance(node[keys[pick % len(keys)]], dict):
                break
            node = node[keys[pick % len(keys)]]
        key = sorted(node)[pick % len(node)] if isinstance(node, dict) and node else None
        if key is not None:
            if action == "remove":
                del node[key]
            else:
                node[key] = "x" if not isinstance(node[key], str) else [node[key]]
        path.write_text(yaml.safe_dump(doc) if path.suffix == ".yaml" else json.dumps(doc))


def _reading_commands(d: Path) -> dict:
    """Each reading command's checks, called in-process: None (it can go on) or its refusal."""
    from mdfs.pipeline.commands import refilter as rf
    from mdfs.pipeline.config import load_config
    from mdfs.pipeline.stages.dedup_state import check_against
    from mdfs.pipeline.io.readback import check_stores
    from mdfs.pipeline.commands.report import build as report_build

    out = {}
    try:
        old_cfg, _funnel, _stats = rf.load_run(str(d))
        rejects = rf.earlier_rejects(str(d))
        rf._load_configs(str(d), old_cfg, None, None, None)
        check_stores(str(d), rejects, False)
        out["refilter"] = None
    except (rf.RefilterError, ReadBackError, ValueError) as exc:
        out["refilter"] = str(exc)
    out["dedup-against"] = check_against(load_config(), str(d)) or None  # one line per problem
    try:
        report_build(str(d))
        out["report"] = None
    except ValueError as exc:
        out["report"] = str(exc)
    return out


@settings(max_examples=25, deadline=None, derandomize=True, phases=[Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(target=st.sampled_from(TAMPERABLE), action=st.sampled_from(["truncate", "remove", "retype"]),
       fraction=st.floats(0.0, 0.99), pick=st.integers(0, 1000))
def test_a_tampered_run_directory_works_or_is_refused_in_one_line(run_dir, tmp_path_factory, target, action,
                                                                  fraction, pick):
    d = tmp_path_factory.mktemp("tamper") / "run"
    shutil.copytree(run_dir, d, ignore=shutil.ignore_patterns("report"))  # the report's own output: not read
    _tamper(d, target, action, fraction, pick)
    for command, refusal in _reading_commands(d).items():
        for line in [refusal] if isinstance(refusal, str) else refusal or []:
            assert "\n" not in line and line.strip() and "Traceback" not in line, (command, target, action, line)

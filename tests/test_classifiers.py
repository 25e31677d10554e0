"""Classifiers: data validation, fastText and tiny-BERT training in seconds on
the bundled SMS spam set, evaluation report, safe loading, segment
aggregation, and the fine stage inside the pipeline (scores, thresholds,
cascade)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mdfs.classifiers import bert
from mdfs.classifiers.data import DataError, read_jsonl
from mdfs.classifiers.evaluate import evaluate, metrics
from mdfs.classifiers.fasttext_model import FastTextClassifier, to_fasttext_tokens
from mdfs.pipeline.stages.fine import decide

from helpers import assert_invariant, real_zh_texts, run_job, scores_dict, write_jsonl_gz

DATA = Path(__file__).resolve().parent / "data"
TRAIN, TEST = DATA / "sms_spam_train.jsonl", DATA / "sms_spam_test.jsonl"


def test_read_jsonl_validation(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_text('{"text": "hello", "label": "high"}\n{"text": "  ", "label": "low"}\n'
                 '{"text": "buy now", "label": "ad"}\n')
    d = read_jsonl(str(f))
    assert d.label_names == ["ad", "high"] and d.skipped_empty == 1 and d.label_ids == [1, 0]
    with pytest.raises(DataError, match="unknown label 'ad'"):
        read_jsonl(str(f), label_names=["high", "low"])
    f.write_text('{"text": "a", "label": "x"}\n')
    with pytest.raises(DataError, match="two labels"):
        read_jsonl(str(f))
    f.write_text('{"text": "a"}\n')
    with pytest.raises(DataError, match="needs the fields"):
        read_jsonl(str(f))


def test_fasttext_tokens_split_chinese_per_character():
    assert to_fasttext_tokens("扫码关注Free iPhone 15!") == "扫 码 关 注 free iphone 15 !"


def test_fasttext_trains_and_scores(fasttext_models):
    res = evaluate(str(fasttext_models / "ft"), str(TEST))
    assert res["kind"] == "fasttext" and res["macro_f1"] >= 0.85
    p = FastTextClassifier(str(fasttext_models / "ft")).predict_proba(["WINNER!! Claim your free prize now, call 0800", ""])
    assert set(p[0]) == {"ham", "spam"} and abs(sum(p[0].values()) - 1) < 1e-3 and p[0]["spam"] > 0.5


def test_tiny_bert_trains_saves_safetensors_and_scores(models):
    d = models / "bert"
    assert (d / "model.safetensors").is_file() and (d / "tokenizer.json").is_file() and (d / "README.md").is_file()
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["id2label"] == {"0": "ham", "1": "spam"}
    res = evaluate(str(d), str(TEST))
    assert res["kind"] == "bert" and res["macro_f1"] >= 0.8
    assert res["confusion_matrix"]["labels"] == ["ham", "spam"]
    assert [r["threshold"] for r in res["threshold_sweep"]["spam"]][:3] == [0.1, 0.2, 0.3]


def test_long_texts_are_segmented_and_empty_texts_scored(models):
    tok, model, labels = bert.load(str(models / "bert"))
    long = "free prize call now " * 400
    segs = bert.segment_ids(tok, ["", "short", long], max_length=64, max_segments=8)
    assert [s[0] for s in segs].count(2) == 8 and all(len(ids) <= 64 for _, ids in segs)
    probs = bert.score(tok, model, labels, ["", "x", long], max_length=64)
    assert len(probs) == 3 and all(abs(sum(p.values()) - 1) < 1e-4 for p in probs)


def test_segment_aggregation_known_answers():
    segs = [(0, [1] * 10), (0, [1] * 30), (1, [1] * 5)]
    probs = [np.array([0.8, 0.2]), np.array([0.4, 0.6]), np.array([0.1, 0.9])]
    mean = bert.aggregate_segments(segs, probs, 2, ["a", "b"], "mean")
    assert mean[0]["a"] == pytest.approx((0.8 * 10 + 0.4 * 30) / 40) and mean[1]["b"] == pytest.approx(0.9)
    mx = bert.aggregate_segments(segs, probs, 2, ["a", "b"], "max")
    assert mx[0]["a"] == pytest.approx(0.8 / 1.4)
    first = bert.aggregate_segments(segs, probs, 2, ["a", "b"], "first")
    assert first[0] == {"a": pytest.approx(0.8), "b": pytest.approx(0.2)}
    with pytest.raises(ValueError):
        bert.aggregate_segments(segs, probs, 2, ["a", "b"], "median")


def test_model_dir_checks(tmp_path, models):
    with pytest.raises(bert.ModelError, match="not found"):
        bert.check_model_dir(str(tmp_path / "nope"))
    pickle_dir = tmp_path / "pickled"
    pickle_dir.mkdir()
    (pickle_dir / "config.json").write_text((models / "bert" / "config.json").read_text())
    (pickle_dir / "pytorch_model.bin").write_bytes(b"\x80\x04pickle")
    (pickle_dir / "tokenizer.json").write_text("{}")
    with pytest.raises(bert.ModelError, match="pickle"):
        bert.check_model_dir(str(pickle_dir))
    assert bert.check_model_dir(str(pickle_dir), allow_pickle=True)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text("{}")
    with pytest.raises(bert.ModelError, match="no model weights"):
        bert.check_model_dir(str(tmp_path / "empty"))


def test_metrics_known_answer():
    probs = [{"a": 0.9, "b": 0.1}, {"a": 0.2, "b": 0.8}, {"a": 0.6, "b": 0.4}, {"a": 0.3, "b": 0.7}]
    m = metrics(["a", "b", "b", "b"], probs, ["a", "b"])
    assert m["confusion_matrix"]["rows_gold_cols_pred"] == [[1, 0], [1, 2]]
    assert m["per_class"]["a"] == {"precision": 0.5, "recall": 1.0, "f1": 0.6667, "support": 1}
    assert m["macro_f1"] == pytest.approx((0.6667 + 0.8) / 2, abs=1e-4)


def test_decide_thresholds():
    drop = {"low": "low_quality", "ad": "advertisement"}
    th = {"low": 0.5, "ad": 0.7}
    assert decide({"high": 0.6, "low": 0.3, "ad": 0.1}, drop, th) is None
    assert decide({"high": 0.1, "low": 0.3, "ad": 0.6}, drop, th) is None  # ad below its own threshold
    assert decide({"high": 0.1, "low": 0.1, "ad": 0.8}, drop, th)[0] == "advertisement"
    assert decide({"high": 0.0, "low": 0.55, "ad": 0.45}, drop, th)[0] == "low_quality"


def test_cli_train_and_eval(tmp_path):
    out = tmp_path / "ft"
    r = subprocess.run([sys.executable, "-m", "mdfs.pipeline.commands.cli", "train-classifier", "--kind", "fasttext",
                        "--train", str(TRAIN), "--output", str(out), "--test", str(TEST)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    report = json.loads((out / "eval.json").read_text())
    assert {"macro_f1", "per_class", "confusion_matrix", "threshold_sweep"} <= set(report)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "x", "label": "other"}\n{"text": "y", "label": "spam"}\n')
    r = subprocess.run([sys.executable, "-m", "mdfs.pipeline.commands.cli", "eval-classifier", "--model", str(out),
                        "--test", str(bad)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "unknown label 'other'" in r.stderr


def _sms_source(tmp_path):
    rows = [json.loads(l) for l in TEST.read_text().splitlines()]
    write_jsonl_gz(tmp_path / "sms.jsonl.gz", [{"id": f"m{i}", "text": r["text"]} for i, r in enumerate(rows)])
    return rows, [f"sms={tmp_path}/sms.jsonl.gz"]


def _fine_sets(models, **over):
    # fine.languages: every language here - SMS slang is English, but short messages fool language ID
    sets = ["coarse.enabled=false", "near_dedup.enabled=false", "fine.languages=[]", f"fine.fasttext_model={models / 'ft'}",
            f"fine.bert_model={models / 'bert'}", "fine.drop_labels={spam: advertisement}", "fine.thresholds={spam: 0.5}",
            "fine.bert.max_length=64"]
    return sets + [f"{k}={v}" for k, v in over.items()]


def test_fine_stage_in_pipeline_cascade(models, tmp_path):
    rows, sources = _sms_source(tmp_path)
    res = run_job(tmp_path / "o1", sources=sources, sets=_fine_sets(models))
    assert_invariant(res)
    e = res["funnel"]["sources"]["sms"]
    assert "fine" in res["funnel"]["stages"]
    assert e["dropped_by_reason"].get("fine/advertisement", 0) >= 80  # 120 spam among 360
    for r in res["kept"]:
        scores = scores_dict(r)
        assert set(scores) >= {"fasttext.ham", "fasttext.spam"}
        if "bert.spam" in scores:
            assert scores["bert.spam"] < 0.5
        else:
            assert scores["fasttext.spam"] <= 0.05 + 1e-6  # sure_keep band
    routed = sum("bert.spam" in scores_dict(r) for r in res["kept"])
    assert 0 < routed < len(res["kept"])  # the cascade sent some, not all, to BERT
    # the funnel says how the cascade split the documents it judged (kept and dropped)
    by = e["fine_decided_by"]
    fine_drops = [d for d in res["dropped"] if d["stage"] == "fine"]
    assert by["bert"] == routed + sum(d["detail"].startswith("bert ") for d in fine_drops)
    assert by["fasttext"] == len(res["kept"]) - routed + sum(d["detail"].startswith("fasttext ") for d in fine_drops)
    from mdfs.pipeline.commands.report import write_report

    write_report(str(tmp_path / "o1"))
    md = (tmp_path / "o1" / "report" / "report.md").read_text()
    assert "## Classifier cascade (fine stage)" in md and f"| sms | {by['fasttext']:,} | {by['bert']:,} |" in md
    rep = json.loads((tmp_path / "o1" / "report" / "stats.json").read_text())  # scores.png plots the drops too
    assert sum(rep["dropped_scores"]["sms"]["fasttext.spam"]) == len(fine_drops)
    assert (tmp_path / "o1" / "report" / "scores.png").stat().st_size > 10_000
    gold = {f"m{i}": r["label"] for i, r in enumerate(rows)}
    dropped_spam = sum(gold[d["id"]] == "spam" for d in res["dropped"])
    assert dropped_spam / sum(v == "spam" for v in gold.values()) >= 0.8


def test_fine_stage_thresholds_and_bert_only(models, tmp_path):
    rows, sources = _sms_source(tmp_path)
    strict = run_job(tmp_path / "o2", sources=sources,
                     sets=_fine_sets(models, **{"fine.fasttext_model": "null", "fine.thresholds": "{spam: 0.999}"}))
    loose = run_job(tmp_path / "o3", sources=sources,
                    sets=_fine_sets(models, **{"fine.fasttext_model": "null", "fine.thresholds": "{spam: 0.01}"}))
    assert_invariant(strict), assert_invariant(loose)
    n_strict = strict["funnel"]["sources"]["sms"]["dropped"]
    n_loose = loose["funnel"]["sources"]["sms"]["dropped"]
    assert n_strict < n_loose
    assert all("bert.spam" in scores_dict(r) and "fasttext.spam" not in scores_dict(r) for r in strict["kept"])


def test_run_says_fine_stage_is_skipped(tmp_path):
    src = tmp_path / "n.jsonl.gz"
    write_jsonl_gz(src, [{"id": "x", "text": "hello world"}])
    r = subprocess.run([sys.executable, "-m", "mdfs.pipeline.commands.cli", "run", "--output", str(tmp_path / "o"),
                        "--source", f"n={src}"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "stage fine SKIPPED: no classifier configured" in r.stderr
    assert json.loads((tmp_path / "o" / "funnel.json").read_text())["skipped_stages"]["fine"].startswith("no classifier")


def test_fine_stage_on_prism_with_the_accelerator_hint(models, tmp_path):
    """The cascade and RunInference on Prism give the same decisions as the
    DirectRunner; the accelerator hint, meaningful on Dataflow only, is carried
    and ignored there."""
    from test_runner_parity import PRISM, PRISM_ARGS, _signature, needs_prism

    if needs_prism.args[0]:
        pytest.skip(needs_prism.kwargs["reason"])
    assert PRISM.exists(), f"Prism binary missing at {PRISM}"
    _, sources = _sms_source(tmp_path)
    sets = _fine_sets(models, **{"fine.bert.accelerator": "'type:nvidia-l4;count:1;install-nvidia-driver'"})
    base = run_job(tmp_path / "direct", sources=sources, sets=sets)
    prism = run_job(tmp_path / "prism", sources=sources, sets=sets, beam_args=PRISM_ARGS)
    assert_invariant(prism)
    assert _signature(prism) == _signature(base)
    assert prism["funnel"]["sources"]["sms"]["dropped_by_reason"].get("fine/advertisement", 0) >= 80


def test_training_languages_are_recorded_and_scope_the_fine_stage(models, tmp_path):
    """A model trained on English judges English documents only: Chinese documents
    pass the stage unscored, counted in the funnel, never dropped by it."""
    from mdfs.classifiers.metadata import recorded_languages
    from mdfs.pipeline.config import load_config
    from mdfs.pipeline.stages.fine import fine_languages

    assert recorded_languages(str(models / "ft"), "fasttext") == ["en"]
    cfg = load_config(sets=[f"fine.fasttext_model={models / 'ft'}", f"fine.bert_model={models / 'bert'}"])
    assert cfg.fine.languages is None and fine_languages(cfg.fine) == ["en"]
    rows, _ = _sms_source(tmp_path)
    zh = [{"id": f"z{i}", "text": t} for i, t in enumerate(real_zh_texts())]
    spam = [{"id": f"s{i}", "text": r["text"]} for i, r in enumerate(rows) if r["label"] == "spam"][:40]
    write_jsonl_gz(tmp_path / "mixed.jsonl.gz", zh + spam)
    sets = [s for s in _fine_sets(models) if not s.startswith("fine.languages")] + ["exact_dedup.enabled=false"]
    res = run_job(tmp_path / "o", sources=[f"mixed={tmp_path}/mixed.jsonl.gz"], sets=sets)
    assert_invariant(res)
    e = res["funnel"]["sources"]["mixed"]
    assert e["passed_unscored"] == {"fine": len(zh)}
    assert {r["id"] for r in res["kept"]} >= {z["id"] for z in zh}
    assert not any(r["id"].startswith("z") for r in res["dropped"])
    assert e["dropped_by_reason"].get("fine/advertisement", 0) >= 20  # the English spam is still judged


def test_a_model_without_recorded_languages_needs_fine_languages(fasttext_models, tmp_path):
    import shutil

    bare = tmp_path / "bare-ft"
    shutil.copytree(fasttext_models / "ft", bare)
    meta = json.loads((bare / "labels.json").read_text())
    meta.pop("languages")
    (bare / "labels.json").write_text(json.dumps(meta))
    r = subprocess.run([sys.executable, "-m", "mdfs.pipeline.commands.cli", "run", "--output", str(tmp_path / "o"),
                        "--set", f"fine.fasttext_model={bare}", "--set", "fine.drop_labels={spam: advertisement}"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "fine.languages: the model at" in r.stderr and not (tmp_path / "o").exists()


def test_fasttext_model_size_follows_the_data(fasttext_models):
    """fastText's default 2,000,000 hash buckets make a ~500 MB file from any data;
    mdfs sizes them by the training rows (docs/CLASSIFIER.md: 15 MB at 10,000 rows)."""
    from mdfs.classifiers.fasttext_model import default_buckets

    assert default_buckets(["x"] * 540) == 20_000 and default_buckets(["x"] * 10_000) == 50_000
    assert default_buckets(["x"] * 10_000_000) == 2_000_000
    assert (fasttext_models / "ft" / "model.bin").stat().st_size < 20e6


@pytest.mark.bert
def test_bert_training_and_evaluation_show_progress(tmp_path):
    """The first lines come at once, and training and scoring have bars with rate and ETA."""
    out = tmp_path / "bert"
    r = subprocess.run([sys.executable, "-m", "mdfs.pipeline.commands.cli", "train-classifier", "--kind", "bert",
                        "--train", str(TRAIN), "--output", str(out), "--epochs", "1", "--hidden-size", "32",
                        "--layers", "1", "--max-length", "32", "--test", str(TEST)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert lines[0].startswith("training a WordPiece vocabulary on") and lines[1].startswith("tokenizing")
    training = next(x for x in lines if x.startswith("training") and "ETA" in x)
    steps = -(-sum(1 for _ in TRAIN.open()) // 32)
    assert f"{steps}/{steps}" in training and "/s" in training
    assert any(x.startswith("scoring") and "ETA" in x for x in lines)
    assert "Writing model shards" not in r.stderr and "Loading weights" not in r.stderr  # transformers' own bars

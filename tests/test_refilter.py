"""Quality signals, the candidate store and ``mdfs refilter``.

The bundled samples are run once with the candidate store and a fastText ->
BERT cascade (tiny spam models trained here); each refilter is compared with
a fresh run under the same new thresholds: same kept set, same funnel, same
dropped (id, stage, reason).  Refused changes are refused before anything is
written, naming the key."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from mdfs.pipeline.commands.cli import main as mdfs_main
from mdfs.pipeline.stages.coarse import PRE_RULE_REASONS, rule_sets
from mdfs.pipeline.config import load_config
from mdfs.pipeline.stages.rules.common import TextView
from mdfs.pipeline.stages.rules.rule import first_verdict, measure_all, verdict_from_signals

from helpers import real_en_texts, real_zh_texts


def _mdfs(*args) -> int:
    return mdfs_main([str(a) for a in args])


def _fine_sets(models) -> list[str]:
    return ["--set", "output.candidates=true", "--set", f"fine.fasttext_model={models / 'ft'}",
            "--set", f"fine.bert_model={models / 'bert'}", "--set", "fine.drop_labels={spam: advertisement}",
            "--set", "fine.thresholds={spam: 0.5}", "--set", "fine.languages=[en]", "--set", "fine.bert.max_length=64"]


def _rows(folder: Path, columns=None) -> list[dict]:
    if not folder.exists():
        return []
    return ds.dataset(str(folder), format="parquet").to_table(columns=columns).to_pylist()


def _outcome(run: Path) -> dict:
    return {"kept": sorted((r["id"], r["token_count"]) for r in _rows(run / "kept", ["id", "token_count"])),
            "dropped": sorted((r["source"], r["id"], r["stage"], r["reason"])
                              for r in _rows(run / "dropped", ["source", "id", "stage", "reason"])),
            "failed": sorted((r["source"], r["id"] or "", r["stage"], r["error_kind"])
                             for r in _rows(run / "failed", ["source", "id", "stage", "error_kind"])),
            # the candidate store as a run with these thresholds writes it (a refilter rewrites the earlier one;
            # its signals are the earlier run's: a rule turned off there keeps the values it measured)
            "candidates": sorted((r["id"], r["coarse_reason"] or "", r["coarse_detail"] or "", r["token_count"],
                                  hash(r["text"]), len(r["removed_lines"] or []))
                                 for r in _rows(run / "candidates" / "documents"))}


def _funnel(run: Path) -> dict:
    f = json.loads((run / "funnel.json").read_text())
    for e in f["sources"].values():
        e.pop("rescored", None)
    return f["sources"]


@pytest.fixture(scope="module")
def base(tmp_path_factory, models):
    out = tmp_path_factory.mktemp("refilter") / "base"
    assert _mdfs("run", "--output", out, *_fine_sets(models)) == 0
    return out


# --- signals ----------------------------------------------------------------------------

def test_signals_give_the_verdict_the_rules_give():
    """All signals measured, and the first failing rule among them, is what the
    rules stopping at the first failure say; the stored values give it back."""
    rules = rule_sets(load_config().coarse)
    texts = [(t, "zh") for t in real_zh_texts()] + [(t, "en") for t in real_en_texts()]
    texts += [("短。" * 30, "zh"), ("lorem ipsum {x}\n" * 40, "en"), ("", "other"),
              ("这是一个很长的句子，用来测试重复的内容。" * 40, "zh"),
              ("今天的天气很好，我们去公园散步吧。★★★★★★★★\n" * 30, "zh"), ("word " * 20, "en")]
    fired = set()
    for text, lang in texts:
        view = TextView(text)
        values, verdict = measure_all(rules[lang], view)
        assert verdict == first_verdict(rules[lang], TextView(text))
        assert set(values) == {r.signal for r in rules[lang]}
        stored = {k: float(v) for k, v in values.items()}  # as the Parquet column holds them
        assert verdict_from_signals(rules[lang], stored) == verdict
        fired.add(verdict[0] if verdict else None)
    assert None in fired and len(fired) >= 4  # kept ones and several different rules


def test_signals_in_kept_and_dropped(base):
    cfg = load_config()
    rules = rule_sets(cfg.coarse)
    kept = _rows(base / "kept")
    assert kept
    for r in kept:
        names = {s["name"] for s in r["signals"]}
        lang = r["language"] if r["language"] in ("zh", "en") else "other"
        assert {x.signal for x in rules[lang]} <= names, (r["id"], names)
        assert f"lid.{r['language']}" in names
        if r["language"] == "en":  # the classifiers' language: their scores join the signals
            assert {"fasttext.ham", "fasttext.spam"} <= names
    by_rule = [d for d in _rows(base / "dropped") if d["stage"] == "coarse" and d["reason"] not in PRE_RULE_REASONS]
    assert by_rule
    for d in by_rule:
        values = {s["name"]: s["value"] for s in d["signals"]}
        lang = next(n[4:] for n in values if n.startswith("lid."))
        lang = lang if lang in ("zh", "en") else "other"
        # every signal of the language, and the failing rule's verdict follows from its value
        assert {x.signal for x in rules[lang]} <= set(values)
        assert verdict_from_signals(rules[lang], values) == (d["reason"], d["detail"])


def test_candidate_store(base):
    cands = {r["id"]: r for r in _rows(base / "candidates" / "documents")}
    dropped = _rows(base / "dropped")
    kept_ids = {r["id"] for r in _rows(base / "kept", ["id"])}
    assert kept_ids <= set(cands)
    later = {d["id"] for d in dropped if d["stage"] in ("exact_dedup", "near_dedup", "fine")}
    assert later and later <= set(cands)  # whatever happened to them after the rules
    rules_dropped = {d["id"] for d in dropped if d["stage"] == "coarse" and d["reason"] not in PRE_RULE_REASONS}
    assert rules_dropped <= set(cands)
    assert all(cands[i]["coarse_reason"] is not None for i in rules_dropped)
    before = {d["id"] for d in dropped if d["stage"] in ("read", "extract")
              or (d["stage"] == "coarse" and d["reason"] in PRE_RULE_REASONS)}
    assert not before & set(cands)  # not candidates: never reached the rules
    assert any(c["removed_lines"] for c in cands.values())  # line cleaning's removals kept beside the text
    scores = _rows(base / "candidates" / "scores")
    assert scores and {s["key"] for s in scores} <= {c["key"] for c in cands.values()}


# --- refilter equals a fresh run ----------------------------------------------------------

CHANGES = [
    pytest.param(["coarse.zh.min_chars=100", "coarse.zh.min_mean_line_chars=5", "coarse.en.gopher_quality.min_words=20"], id="zh-looser"),
    pytest.param(["coarse.zh.max_repetition_share=0.1", "coarse.zh.min_sentence_ends=5"], id="zh-stricter"),
    pytest.param(["coarse.en.gopher_quality.min_words=300", "coarse.en.fineweb.line_punct_thr=0.3"],
                 id="en-stricter"),
    pytest.param(["coarse.en.gopher_repetition.enabled=false", "coarse.en.c4.min_sentences=1",
                  "fine.thresholds={spam: 0.2}", "sources.news.min_language_score=0.9"], id="en-looser-fine-lid"),
]


@pytest.mark.parametrize("changes", CHANGES)
def test_refilter_equals_a_fresh_run(base, models, tmp_path, changes):
    sets = [x for c in changes for x in ("--set", c)]
    assert _mdfs("refilter", base, "--output", tmp_path / "refiltered", *sets) == 0
    assert _mdfs("run", "--output", tmp_path / "fresh", *_fine_sets(models), *sets) == 0
    refiltered, fresh = _outcome(tmp_path / "refiltered"), _outcome(tmp_path / "fresh")
    assert refiltered["kept"] != _outcome(base)["kept"]  # the change changed something
    assert refiltered == fresh
    assert _funnel(tmp_path / "refiltered") == _funnel(tmp_path / "fresh")
    marker = json.loads((tmp_path / "refiltered" / "refilter.json").read_text())
    assert marker["refilter_of"] == str(base) and marker["changed"]
    assert (tmp_path / "refiltered" / "_SUCCESS").exists() and (tmp_path / "refiltered" / "report").is_dir()


def test_refilter_of_a_refilter_back_to_the_first_thresholds_reproduces_the_run(base, tmp_path):
    """A refilter's output is a run like any other: refiltered back to the earlier
    thresholds it gives the earlier run's outcome, funnel and candidate store
    (its read-stage rejects were copied, the rest carried through its sinks)."""
    stricter = ["--set", "coarse.zh.min_chars=400", "--set", "coarse.en.gopher_quality.min_words=200"]
    assert _mdfs("refilter", base, "--output", tmp_path / "r1", *stricter) == 0
    assert _outcome(tmp_path / "r1")["kept"] != _outcome(base)["kept"]
    back = ["--set", "coarse.zh.min_chars=200", "--set", "coarse.en.gopher_quality.min_words=50"]
    assert _mdfs("refilter", tmp_path / "r1", "--output", tmp_path / "r2", *back) == 0
    assert _outcome(tmp_path / "r2") == _outcome(base)
    assert _funnel(tmp_path / "r2") == _funnel(base)
    names = sorted(f.name for f in (tmp_path / "r2" / "dropped").glob("*.parquet"))
    assert any(n.startswith("part-read-") for n in names) and any(n.startswith("part-stages-") for n in names)


def test_refilter_counts_tokens_again_with_another_tokenizer(base, tmp_path):
    """Stored token counts are reused only with the run's tokenizer: with another
    one, kept documents and candidates are counted by it."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(["the a of"], trainers.WordLevelTrainer(special_tokens=["[UNK]"]))
    tok.save(str(tmp_path / "tokenizer.json"))
    assert _mdfs("refilter", base, "--output", tmp_path / "r", "--set", f"stats.tokenizer={tmp_path}") == 0
    words = {r["id"]: len(tok.encode(r["text"], add_special_tokens=False).ids)
             for r in _rows(tmp_path / "r" / "kept", ["id", "text"])}
    counted = {r["id"]: r["token_count"] for r in _rows(tmp_path / "r" / "kept", ["id", "token_count"])}
    stored = {r["id"]: r["token_count"] for r in _rows(base / "kept", ["id", "token_count"])}
    assert words and counted == words and counted != {k: stored[k] for k in counted}
    cands = _rows(tmp_path / "r" / "candidates" / "documents", ["text", "token_count"])
    assert cands and all(c["token_count"] == len(tok.encode(c["text"], add_special_tokens=False).ids)
                         for c in cands)


def test_refilter_scores_only_what_has_no_stored_scores(base, tmp_path):
    assert _mdfs("refilter", base, "--output", tmp_path / "r", "--set", "coarse.en.gopher_quality.min_words=10") == 0
    f = json.loads((tmp_path / "r" / "funnel.json").read_text())
    rescored = sum(sum(e["rescored"].values()) for e in f["sources"].values())
    reached = sum(e["after_stage"]["near_dedup"] for e in f["sources"].values())
    assert 0 < rescored < reached  # the newly admitted were scored, the rest came from the store


# --- refusals -------------------------------------------------------------------------------

@pytest.mark.parametrize("setting,named", [
    ("sources.web_zh.languages=[en]", "sources.web_zh.languages"),
    ("coarse.lines.remove_navigation=false", "coarse.lines.remove_navigation"),
    ("near_dedup.shingles={zh: {unit: char, n: 3}, default: {unit: word, n: 5}}", "near_dedup.shingles"),
    ("fine.cascade.sure_keep=0.9", "fine.cascade.sure_keep"),
    ("extract.favor=precision", "extract.favor"),
    ("coarse.zh.repetition_ngram=10", "coarse.zh.repetition_ngram"),
    ("coarse.traditional_chinese=drop", "coarse.traditional_chinese"),
    ("coarse.en.gopher_repetition.top_ngram_char_frac={2: 0.2, 5: 0.1}", "gopher.top_5gram_char_share"),
    ("sources.news.min_language_score=0.1", "sources.news.min_language_score"),
    ("coarse.zh.min_chars=-1", "coarse.zh.min_chars"),
])
def test_refilter_refuses_what_is_not_a_threshold(base, tmp_path, capsys, setting, named):
    assert _mdfs("refilter", base, "--output", tmp_path / "r", "--set", setting) == 2
    err = capsys.readouterr().err
    assert named in err, err
    assert not (tmp_path / "r").exists()


def test_refilter_refuses_runs_it_cannot_use(base, tmp_path, capsys):
    assert _mdfs("refilter", base, "--output", base) == 2
    assert "must differ" in capsys.readouterr().err
    copy = tmp_path / "no_candidates"
    shutil.copytree(base, copy)
    shutil.rmtree(copy / "candidates")
    assert _mdfs("refilter", copy, "--output", tmp_path / "r") == 2
    assert "no candidate store" in capsys.readouterr().err
    (copy / "_SUCCESS").unlink()
    assert _mdfs("refilter", copy, "--output", tmp_path / "r") == 2
    assert "needs a finished run" in capsys.readouterr().err
    assert _mdfs("refilter", base, "--output", tmp_path / "r", "--source", "x=y") == 2
    assert "--source" in capsys.readouterr().err
    stray = tmp_path / "stray"
    shutil.copytree(base, stray)
    shutil.copy(next((stray / "dropped").glob("part-read-*.parquet")), stray / "dropped" / "mine.parquet")
    assert _mdfs("refilter", stray, "--output", tmp_path / "r") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "mine.parquet: not a file mdfs wrote" in err[0]
    assert not (tmp_path / "r").exists()


def test_what_if_curves_in_the_report(base):
    """The report's what-if section agrees with the coarse verdicts stored with
    the candidates: at the current thresholds every curve gives the share the
    rules kept; with a threshold moved to the signal's minimum (>=) the share is
    what the other rules keep."""
    rep = json.loads((base / "report" / "stats.json").read_text())["whatif"]
    cands = _rows(base / "candidates" / "documents", ["language", "coarse_reason"])
    assert rep["candidates"] == len(cands) and not rep["truncated"]
    for lang, curves in rep["languages"].items():
        mine = [c for c in cands if (c["language"] if c["language"] in ("zh", "en") else "other") == lang]
        kept_share = sum(c["coarse_reason"] is None for c in mine) / len(mine)
        assert curves
        for c in curves:
            assert c["kept_now"] == pytest.approx(kept_share, abs=1e-4), c["signal"]
            assert c["kept_without"] >= c["kept_now"]
            assert c["current"] in c["grid"] and c["grid"] == sorted(c["grid"])
    assert (base / "report" / "whatif_zh.png").stat().st_size > 10_000
    assert "## What if" in (base / "report" / "report.md").read_text()


def test_refilter_with_a_new_model_scores_everything_with_it_and_equals_a_fresh_run(base, models, tmp_path):
    """The review loop's step (docs/REVIEW.md): a model retrained on reviewers' labels refilters the
    run.  No stored score is used (they are the old model's): every document reaching the fine stage
    is scored now, and the outcome is a fresh run's with that model."""
    import shutil

    new_bert = tmp_path / "bert_reviewed"
    shutil.copytree(models / "bert", new_bert)  # another model directory (same weights: the comparison is exact)
    sets = ["--set", f"fine.bert_model={new_bert}", "--set", "fine.thresholds={spam: 0.2}"]
    assert _mdfs("refilter", base, "--output", tmp_path / "refiltered", *sets) == 0
    assert _mdfs("run", "--output", tmp_path / "fresh", *_fine_sets(models), *sets) == 0
    assert _outcome(tmp_path / "refiltered") == _outcome(tmp_path / "fresh")
    f = json.loads((tmp_path / "refiltered" / "funnel.json").read_text())["sources"]
    # every document the fine stage judged (the rest are in languages the model does not judge) was scored now
    for e in f.values():
        judged = e["after_stage"]["near_dedup"] - e.get("passed_unscored", {}).get("fine", 0)
        assert e.get("rescored", {}).get("fine", 0) == judged
    assert sum(e.get("rescored", {}).get("fine", 0) for e in f.values()) > 0

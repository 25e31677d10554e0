"""Decontamination (pipeline/stages/decontaminate/): planted evaluation items with
known answers on real text, the index, the stage's decisions, and the job."""
from __future__ import annotations

import collections
import gzip
import json
import subprocess
import sys
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mdfs.pipeline.stages import decontaminate as dc
from mdfs.pipeline.config import decontamination_sets, load_config, load_defaults
from mdfs.pipeline.records import Document
from mdfs.pipeline.schema import Decontamination

sys.path.insert(0, str(Path(__file__).resolve().parent))
import planted_contamination as planted  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CEVAL_SAMPLE = REPO / "pipeline" / "samples" / "eval" / "ceval_style_sample.jsonl"


def settings(_over: dict | None = None, **sets) -> Decontamination:
    """The default decontamination section with these sets (and ``_over``'s keys), validated."""
    return Decontamination.model_validate({**load_defaults()["decontamination"], "sets": sets, **(_over or {})})


def doc(text: str, key: str = "k1", source: str = "web") -> Document:
    return Document(key=key, id=key, source=source, text=text, file="f", offset=0, signals={"zh.char_count": 1.0})


def run_dofn(index: dc.Index, tmp_path: Path, docs: list) -> tuple[list, list, list]:
    """The stage's DoFn on documents, without a runner: (kept, dropped, found events)."""
    path = str(tmp_path / "index.npz")
    index.save(path)
    fn = dc.DecontaminateDoFn(path)
    fn.setup()
    kept, dropped, found = [], [], []
    for d in docs:
        for out in fn.process(d):
            if isinstance(out, beam.pvalue.TaggedOutput):
                {"dropped": dropped, dc.FOUND: found}[out.tag].append(out.value)
                assert out.tag != "failed", out.value
            else:
                kept.append(out)
    return kept, dropped, found


# --- normalisation and hashing ---------------------------------------------------------------

def test_hashes_are_fixed_numbers():
    """Workers and the launcher are different processes (Python's hash is salted per
    process): the n-gram hash is a fixed function of the text, pinned here."""
    words = dc.ngram_hashes(dc.tokenize(dc.normalise("The quick brown fox jumps over the lazy dog")).values, 5)
    han = dc.ngram_hashes(dc.tokenize(dc.normalise("提前浸泡可以让豆子更容易煮熟")).values, 5)
    assert words[:2].tolist() == [5035691378142715989, 10141968922752349114]
    assert han[:2].tolist() == [11092218829814052702, 18283149772043549294]


@pytest.mark.parametrize("variant", [
    "提前浸泡，可以让豆子更容易煮熟。", "提前 浸泡,可以\n让豆子更容易煮熟.", "提前浸泡可以让豆子更容易煮熟",
    "提前浸泡：可以让豆子　更容易煮熟！"])
def test_punctuation_width_and_whitespace_do_not_change_cjk_ngrams(variant):
    base = dc.ngram_hashes(dc.tokenize(dc.normalise("提前浸泡，可以让豆子更容易煮熟。")).values, 8)
    assert dc.ngram_hashes(dc.tokenize(dc.normalise(variant)).values, 8).tolist() == base.tolist()


def test_words_are_tokens_outside_cjk_and_case_and_full_width_fold():
    tok = dc.tokenize(dc.normalise("ＨＥＬＬＯ, World! 中文ＡＢＣ123 naïve"))
    norm = dc.normalise("ＨＥＬＬＯ, World! 中文ＡＢＣ123 naïve")
    assert [norm[s:e] for s, e in zip(tok.starts, tok.ends)] == ["hello", "world", "中", "文", "abc123", "naïve"]
    assert tok.char_tokens == 2


# --- items ---------------------------------------------------------------------------------

def test_item_text_defaults_and_fields(tmp_path):
    assert dc.item_text({"text": "a b c"}, None) == "a b c"
    assert dc.item_text({"question": "Q?", "options": ["x", "y"], "answer": "B"}, None) == "Q?\nA. x\nB. y\nB"
    assert dc.item_text({"question": "Q?", "choices": {"甲": "x"}}, ["question", "choices"]) == "Q?\n甲. x"
    row = {"question": "问题", "A": "一", "B": "二", "answer": "A"}
    assert dc.item_text(row, ["question", "A", "B", "answer"]) == "问题\nA. 一\nB. 二\nA"
    assert dc.item_text({"title": "x"}, None) is None


def test_items_from_jsonl_gz_parquet_and_csv(tmp_path):
    rows = [{"id": "p1", "question": "Which planet is known as the red planet in the solar system of ours today"}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "set.parquet")
    with gzip.open(tmp_path / "set.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write(json.dumps({"text": "中华人民共和国的首都是北京，这是一个事实"}, ensure_ascii=False) + "\n")
    (tmp_path / "set.csv").write_text("id,question,A,B,answer\nc1,下列哪一项是正确的,甲,乙,A\n", encoding="utf-8")
    got = {}
    for pattern in ("set.parquet", "set.jsonl.gz", "set.csv"):
        spec = decontamination_sets(settings(s=str(tmp_path / pattern)))["s"]
        got[pattern] = list(dc.read_items("s", spec))
    assert got["set.parquet"] == [("p1", rows[0]["question"])]
    assert got["set.jsonl.gz"] == [("set.jsonl.gz:1", "中华人民共和国的首都是北京，这是一个事实")]
    assert got["set.csv"] == [("c1", "下列哪一项是正确的\nA. 甲\nB. 乙\nA")]  # default: question, A-D, answer


def test_bad_sets_are_refused_before_anything_is_written(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"title": "no text"}\n', encoding="utf-8")
    out = tmp_path / "out"
    cases = {
        f"decontamination.sets.a={tmp_path}/nothing-*.jsonl": "decontamination.sets.a: no file matches",
        f"decontamination.sets.b={tmp_path}/bad.jsonl": "bad.jsonl row 1 has none of the fields",
    }
    from mdfs.pipeline.commands.run import UserError, preflight

    for assignment, message in cases.items():
        cfg = load_config(sets=[assignment])
        with pytest.raises(UserError, match=message):
            preflight(cfg, str(out))
        assert not out.exists()
    for assignment, message in {
            "decontamination.sets.c={paths: [x.jsonl], action: delete}": "action",
            "decontamination.sets.c={paths: [x.jsonl], feilds: [a]}": "feilds",
            "decontamination.ngrams.cjk.n=1": "ngrams.cjk.n",
            "decontamination.min_match=2": "min_match"}.items():
        with pytest.raises(ValueError, match=message):
            load_config(sets=[assignment])


def test_short_items_are_listed_and_items_under_n_must_appear_whole(tmp_path):
    items = tmp_path / "s.jsonl"
    ten_words = "the committee approved the new budget for public libraries last year"  # 11 tokens < 13
    items.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in [
        {"id": "short", "text": "水的化学式是什么"}, {"id": "tiny", "text": "too few words here"},
        {"id": "ten", "text": ten_words}]) + "\n", encoding="utf-8")
    index = dc.build_index(settings(s=str(items)))
    info = index.summary["sets"]["s"]
    assert {t["id"] for t in info["too_short"]} == {"short", "tiny"} and info["indexed"] == 1
    assert 11 in index.lengths
    found, _ = index.find(dc.normalise(f"Report: {ten_words.upper()}, it said."))
    assert [index.item_ids[i] for i in found] == ["ten"]
    assert index.find(dc.normalise(ten_words.rsplit(" ", 1)[0]))[0] == {}  # one word short: no match


# --- the planted corpus: the issue's targets -------------------------------------------------

@pytest.fixture(scope="module")
def planted_corpus(tmp_path_factory):
    items, docs, decoys, skipped = planted.build()
    path = planted.write_items(items, tmp_path_factory.mktemp("planted") / "items.jsonl")
    return items, docs, decoys, skipped, dc.build_index(settings(planted=str(path)))


def test_recall_and_false_positives_on_planted_items(planted_corpus):
    items, docs, decoys, skipped, index = planted_corpus
    sizes = {i.id: i.chars_or_words() for i in items}
    floor = {"zh": 50, "en": 10}
    assert all(sizes[i.id] >= floor[i.lang] for i in items)  # the population the target speaks of
    assert min(s for i, s in sizes.items() if i.startswith("en")) == 10  # ... down to its floor
    hits, totals = collections.Counter(), collections.Counter()
    for d in docs:
        found, _ = index.find(dc.normalise(d.text))
        totals[d.kind] += 1
        hits[d.kind] += any(index.item_ids[i] == d.item for i in found)
    flagged = collections.Counter()
    for d in decoys:
        flagged[d.kind] += bool(index.find(dc.normalise(d.text))[0])
    counted = [k for k in totals if k != "partial_below_n"]
    recall = sum(hits[k] for k in counted) / sum(totals[k] for k in counted)
    print({k: f"{hits[k]}/{totals[k]}" for k in totals}, dict(flagged), f"recall {recall:.4f}")
    assert set(counted) == {"verbatim", "reformatted", "partial", "in_long_article"}
    assert totals["partial"] > 250 and len(decoys) > 500
    assert recall >= 0.98
    assert all(hits[k] / totals[k] >= 0.95 for k in counted), (hits, totals)
    assert sum(flagged.values()) <= 0.005 * len(decoys), flagged
    # the reach of an n-gram rule: two thirds of a 10-word sentence (7 words) is not found
    assert totals["partial_below_n"] > 10 and hits["partial_below_n"] <= 0.1 * totals["partial_below_n"]


def test_question_templates_are_not_evidence(planted_corpus, tmp_path):
    """Without the template rule, the long shared stem alone matches every decoy that uses it."""
    items, _docs, decoys, _skipped, index = planted_corpus
    assert index.summary["template_ngrams_left_out"] > 0
    path = planted.write_items(items, tmp_path / "items.jsonl")
    no_rule = dc.build_index(settings({"max_ngram_items": 10 ** 6}, planted=str(path)))
    stem_decoys = [d for d in decoys if planted.ZH_STEMS[0] in d.text or planted.EN_STEMS[0] in d.text]
    assert len(stem_decoys) > 100
    assert sum(bool(no_rule.find(dc.normalise(d.text))[0]) for d in stem_decoys) > 0.9 * len(stem_decoys)
    assert sum(bool(index.find(dc.normalise(d.text))[0]) for d in stem_decoys) == 0


def test_traditional_items_match_converted_documents(tmp_path):
    items = tmp_path / "t.jsonl"
    items.write_text(json.dumps({"id": "t1", "text": "臺灣的學生們在圖書館裡認真學習數學與歷史課程，準備參加明年的大學入學考試"},
                                ensure_ascii=False) + "\n", encoding="utf-8")
    index = dc.build_index(settings(t=str(items)))  # documents are converted to Simplified by the coarse stage
    assert index.find(dc.normalise("消息：台湾的学生们在图书馆里认真学习数学与历史课程，准备参加明年的大学入学考试。"))[0]
    kept_traditional = dc.build_index(settings(t=str(items)), traditional="keep")
    simplified_item = tmp_path / "s.jsonl"
    simplified_item.write_text(json.dumps({"id": "s1", "text": "学生们在图书馆里认真学习数学与历史课程，准备参加明年的大学入学考试"},
                                          ensure_ascii=False) + "\n", encoding="utf-8")
    both = dc.build_index(settings(s=str(simplified_item)), traditional="keep")
    assert both.find(dc.normalise("學生們在圖書館裡認真學習數學與歷史課程，準備參加明年的大學入學考試"))[0]
    assert kept_traditional.find(dc.normalise("臺灣的學生們在圖書館裡認真學習數學與歷史課程"))[0]


# --- the stage ------------------------------------------------------------------------------

ITEM = "下列关于光合作用的叙述中，正确的是哪一项？光合作用主要在植物叶片细胞的叶绿体中进行"


def _index(tmp_path, action="drop", **extra) -> dc.Index:
    items = tmp_path / "i.jsonl"
    items.write_text(json.dumps({"id": "q1", "text": ITEM}, ensure_ascii=False) + "\n", encoding="utf-8")
    return dc.build_index(settings(ceval={"paths": [str(items)], "action": action, **extra}))


def test_drop_names_set_item_and_matched_ngrams(tmp_path):
    kept, dropped, found = run_dofn(_index(tmp_path), tmp_path, [
        doc("今天的新闻。" * 10, "clean"), doc(f"题库：{ITEM}。答案：A", "copy")])
    assert [d.key for d in kept] == ["clean"]
    (d,) = dropped
    assert (d.stage, d.reason) == ("decontaminate", "contaminated")
    assert d.detail.startswith("ceval:q1 ") and d.detail.endswith("n-grams")
    matched, total = d.detail.split(" ")[1].split("/")
    assert int(matched) == int(total) > 10
    assert dict(found[0]) == {("ceval", "web", "documents"): 1, ("ceval", "web", "item", "q1"): 1,
                              ("ceval", "web", "dropped_documents"): 1}


def test_redact_removes_the_matched_spans_and_counts_them(tmp_path):
    before, after = "前面的文章内容保持不变。", "。后面的内容也保持不变。"
    text = f"{before}{ITEM[:30]}中间插入了其他的说明文字内容{ITEM[30:]}{after}"
    kept, dropped, _found = run_dofn(_index(tmp_path, action="redact"), tmp_path, [doc(text)])
    assert dropped == []
    (d,) = kept
    assert d.text.startswith(before) and d.text.endswith(after) and ITEM[:20] not in d.text
    assert d.signals["contamination.redacted_spans"] >= 1
    assert d.signals["contamination.redacted_chars"] == len(text) - len(d.text) >= 30
    assert d.signals["zh.char_count"] == 1.0  # earlier signals stay


def test_redact_maps_spans_back_when_normalisation_changes_length(tmp_path):
    """NFKC turns "㎡" into "m2" and "ﬁ" into "fi": spans are mapped back to the original text."""
    text = f"面积100㎡的ﬁle说明。{ITEM}。结尾"
    kept, _dropped, _found = run_dofn(_index(tmp_path, action="redact"), tmp_path, [doc(text)])
    assert kept[0].text.startswith("面积100㎡的ﬁle说明。") and kept[0].text.endswith("。结尾")
    assert "光合作用" not in kept[0].text


def test_a_document_that_is_only_the_item_is_dropped_even_when_redacting(tmp_path):
    _kept, dropped, _found = run_dofn(_index(tmp_path, action="redact"), tmp_path, [doc(ITEM + "。")])
    assert dropped[0].detail.startswith("nothing left after removing")


@pytest.mark.parametrize("where", [10, dc.WINDOW - 15, dc.WINDOW + dc.OVERLAP - 5, 3 * dc.WINDOW + 7])
def test_long_documents_are_read_in_windows_without_gaps(tmp_path, where):
    filler = ("这是一段与题目无关的长文本，用来填充文档。" * 20000)[:4 * dc.WINDOW]
    text = filler[:where] + ITEM + filler[where:]
    found, _ = _index(tmp_path).find(dc.normalise(text))
    assert list(found) == [0]
    assert _index(tmp_path).find(dc.normalise(filler))[0] == {}


def test_index_round_trip_and_size_limit(tmp_path):
    index = _index(tmp_path)
    index.save(str(tmp_path / "x.npz"))
    again = dc.Index.load(str(tmp_path / "x.npz"))
    assert again.hashes.tolist() == index.hashes.tolist() and again.item_ids == ["q1"]
    assert index.nbytes() == 12 * len(index.hashes) + 10  # 8 + 4 bytes per n-gram, 10 per item
    items = tmp_path / "i.jsonl"
    with pytest.raises(ValueError, match="max_index_mb"):
        dc.build_index(settings({"max_index_mb": 1e-6}, ceval=str(items)))


# --- the job -------------------------------------------------------------------------------

def _mdfs(*args, cwd):
    return subprocess.run([sys.executable, "-m", "mdfs.pipeline.commands.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


CEVAL_SET = "decontamination.sets.ceval={paths: ['{samples}/eval/*.jsonl'], fields: [question, A, B, C, D, answer]}"


def _kept_ids(out: Path) -> list:
    import pyarrow.dataset as ds

    return sorted(ds.dataset(out / "kept", format="parquet").to_table(columns=["id"]).column("id").to_pylist())


def test_job_drops_the_bundled_sample_item_and_reports_it(tmp_path):
    out = tmp_path / "out"
    assert f'mdfs run --output out --set "{CEVAL_SET}"' in (REPO / "README.md").read_text()  # the README's example
    r = _mdfs("run", "--output", str(out), "--set", CEVAL_SET, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    funnel = json.loads((out / "funnel.json").read_text())
    assert funnel["stages"][:3] == ["extract", "coarse", "decontaminate"]
    assert funnel["sources"]["web_zh"]["dropped_by_reason"]["decontaminate/contaminated"] == 1
    assert funnel["total"]["invariant_ok"]
    report = json.loads((out / "decontamination.json").read_text())
    s = report["sets"]["ceval"]
    assert (s["items"], s["found_item_ids"], s["found_items"]) == (6, ["sample-val-0"], {"web_zh": 1})
    assert [t["id"] for t in s["too_short"]] == ["sample-val-5"]
    import pyarrow.dataset as ds

    dropped = ds.dataset(out / "dropped", format="parquet").to_table(
        filter=ds.field("reason") == "contaminated").to_pylist()
    assert [d["detail"].split(" ")[0] for d in dropped] == ["ceval:sample-val-0"]
    md = (out / "report" / "report.md").read_text()
    assert "## Evaluation sets found in the corpus (decontamination)" in md and "| ceval | drop | 6 | 1 | 1 | web_zh 1 |" in md
    assert (out / "decontamination" / "index.npz").exists()
    # refilter may add or change evaluation sets: the stage runs again over the candidates,
    # and keeps what a fresh run with the set keeps
    base = tmp_path / "base"
    assert _mdfs("run", "--output", str(base), "--set", "output.candidates=true", cwd=tmp_path).returncode == 0
    again = tmp_path / "again"
    r = _mdfs("refilter", str(base), "--output", str(again), "--set", CEVAL_SET, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert _kept_ids(again) == _kept_ids(out) and len(_kept_ids(base)) == len(_kept_ids(out)) + 1
    assert json.loads((again / "decontamination.json").read_text())["sets"]["ceval"]["found_item_ids"] == \
        ["sample-val-0"]

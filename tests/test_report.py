"""Statistics and report: every number recounted by brute force from the
output Parquet; the GPT-3-style mix table with several sources; Chinchilla."""
from __future__ import annotations

import csv
import json

import pytest

from mdfs.pipeline.config import load_defaults
from mdfs.pipeline.commands.report import mix_table, write_report
from mdfs.pipeline.schema import Mix
from mdfs.pipeline.tokens import TokenCounter


def test_stats_match_a_recount_of_the_parquet(sample_run):
    out, res = sample_run
    stats = json.loads((out / "stats" / "pipeline_stats.json").read_text())
    counter = TokenCounter()
    by_source = {}
    for r in res["kept"]:
        assert r["token_count"] == counter.count(r["text"])
        s = by_source.setdefault(r["source"], {"documents": 0, "bytes": 0, "chars": 0, "tokens": 0})
        s["documents"] += 1
        s["bytes"] += len(r["text"].encode("utf-8"))
        s["chars"] += len(r["text"])
        s["tokens"] += r["token_count"]
    for source, expected in by_source.items():
        assert stats["stages"][source]["kept"] == expected, source
        assert stats["stages"][source]["read"]["documents"] == res["funnel"]["sources"][source]["read"]
        langs = stats["languages"][source]
        assert sum(langs.values()) == expected["documents"]
        q = stats["length_quantiles"][source]
        assert q[0] == min(r["token_count"] for r in res["kept"] if r["source"] == source)
        assert q[-1] == max(r["token_count"] for r in res["kept"] if r["source"] == source)


def test_report_files_and_mix_recount(sample_run):
    out, res = sample_run
    rep = write_report(str(out), {"budget_tokens": 1_000_000, "weights": {"news": 0.5}})
    folder = out / "report"
    for name in ("stats.json", "stats.csv", "report.md", "funnel.png", "token_lengths.png"):
        assert (folder / name).is_file() and (folder / name).stat().st_size > 100, name
    tokens = {}
    for r in res["kept"]:
        tokens[r["source"]] = tokens.get(r["source"], 0) + r["token_count"]
    rows = {r["source"]: r for r in rep["mix"]["rows"]}
    rest = sum(t for s, t in tokens.items() if s != "news")
    for s, t in tokens.items():
        w = 0.5 if s == "news" else 0.5 * t / rest
        assert rows[s]["tokens"] == t
        assert rows[s]["weight"] == pytest.approx(w, abs=1e-12)
        assert rows[s]["epochs"] == pytest.approx(w * 1_000_000 / t, abs=1e-9)
        assert rows[s]["effective_tokens"] == pytest.approx(w * 1_000_000, abs=1e-9)
    assert sum(r["weight"] for r in rep["mix"]["rows"]) == pytest.approx(1.0)
    md = (folder / "report.md").read_text()
    assert "| news |" in md and "epochs at budget" in md
    with open(folder / "stats.csv") as fh:
        kept_rows = [r for r in csv.DictReader(fh) if r["stage"] == "kept"]
    assert {r["source"]: int(r["tokens"]) for r in kept_rows} == tokens


def _mix(**given) -> Mix:
    """The ``mix`` section: the defaults with ``given`` on top, checked."""
    return Mix.model_validate({**load_defaults()["mix"], **given})


def test_mix_table_gpt3_style_and_warnings():
    t = mix_table({"cc": 400, "books": 100, "wiki": 10}, _mix(weights={"cc": 0.6, "books": 0.22, "wiki": 0.03},
                                                             budget_tokens=2500, max_epochs=4))
    rows = {r["source"]: r for r in t["rows"]}
    assert rows["cc"]["epochs"] == pytest.approx(0.6 * 2500 / 400)  # 3.75: fine
    assert rows["wiki"]["epochs"] == pytest.approx(0.03 * 2500 / 10)  # 7.5: warned
    warned = {w.split()[1] for w in t["warnings"]}
    assert warned == {"books", "wiki"}
    with pytest.raises(ValueError):
        mix_table({"a": 1}, _mix(weights={"a": 1.5}))


def test_chinchilla_budget_and_compute():
    t = mix_table({"a": 10**9}, _mix(model_params=1e9, tokens_per_param=20))
    assert t["budget_tokens"] == 2e10 and t["budget_basis"] == "chinchilla"
    assert t["compute_flops"] == pytest.approx(6 * 1e9 * 2e10)
    assert t["rows"][0]["epochs"] == pytest.approx(20.0)


def test_token_counter_default_and_hf_tokenizer(tmp_path):
    c = TokenCounter()
    assert c.count("北京时间，GDP grew 5.2%") == 11  # 北 京 时 间 ， GDP grew 5 . 2 %
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(["hello world again"], trainers.WordLevelTrainer(special_tokens=["[UNK]"]))
    tok.save(str(tmp_path / "tokenizer.json"))
    assert TokenCounter(str(tmp_path)).count("hello there world") == 3
    with pytest.raises(FileNotFoundError):
        TokenCounter(str(tmp_path / "nothing"))


def test_terminal_tables_fit_80_columns_and_keep_source_names_whole(sample_run):
    """At 80 columns every line fits, sources that share a prefix stay apart,
    and the non-document WARC records are explained, not called "skipped"."""
    import json

    from rich.console import Console

    from mdfs.pipeline.funnel import render_funnel
    from mdfs.pipeline.commands.report import build, render_mix, write_report

    out, _ = sample_run
    funnel = json.loads((out / "funnel.json").read_text())
    funnel["sources"]["a_source_with_a_rather_long_name_for_a_table"] = funnel["sources"]["news"]
    console = Console(width=80, record=True, file=open("/dev/null", "w"))
    render_funnel(funnel, console)
    write_report(str(out))
    render_mix(build(str(out)), console)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    lines = text.splitlines()
    assert any("common_crawl_wet" in ln for ln in lines) and any("│ common_crawl " in ln for ln in lines)
    assert "non-doc: WARC request, metadata and warcinfo records" in " ".join(text.split())
    assert "skipped │" not in text

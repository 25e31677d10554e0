"""End-to-end runs of the whole Beam job: invariant, schema, limits, reruns, CLI."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mdfs.schemas import DOCUMENT_SCHEMA, DROPPED_SCHEMA, FAILED_SCHEMA

from helpers import assert_invariant, real_zh_texts, run_job, write_jsonl_gz


def test_sample_run_invariant_and_funnel(sample_run):
    _, res = sample_run
    assert_invariant(res)
    f = res["funnel"]["sources"]
    assert set(f) == {"common_crawl", "web_zh", "common_crawl_wet", "news", "forum"}
    cc = f["common_crawl"]
    assert cc["failed_by_error"] == {"read/truncated_record": 1}
    assert cc["dropped_by_reason"]["read/revisit_no_payload"] == 1
    assert cc["dropped_by_reason"]["exact_dedup/exact_duplicate"] == 2  # allenai.org captured 3 times
    assert cc["skipped_records"]["request"] >= 17
    # the funnel narrows monotonically
    for e in f.values():
        counts = [e["read"], *e["after_stage"].values(), e["kept"]]
        assert counts == sorted(counts, reverse=True)
    assert f["web_zh"]["kept"] >= 28  # real Chinese pages survive (forum pages and <200-char pages do not)
    # Aragonese: Common Crawl's WARC-Identified-Content-Language (arg,...) settles it before extraction
    assert f["common_crawl_wet"]["dropped_by_reason"] == {"read/language_prefilter": 1}
    # the sample Common Crawl WARC: its metadata records drop pages with neither Chinese nor English on >= 10 %
    # of their text unextracted (ru 0.99, de 0.83 + en 0.09, nl 0.99; de 0.74 + en 0.19 goes on to extraction)
    assert cc["dropped_by_reason"]["read/language_prefilter"] == 3


def test_near_dedup_reports_the_shingle_unit_of_every_document(sample_run):
    import json

    out, res = sample_run
    stats = json.loads((out / "near_dedup.json").read_text())
    units = stats["documents_per_shingle_unit"]
    assert set(units) <= {"char 5-grams", "word 5-grams"} and units.get("char 5-grams", 0) > 0
    assert sum(units.values()) == sum(e["after_stage"]["exact_dedup"] for e in res["funnel"]["sources"].values())


def test_outputs_have_declared_schemas(sample_run):
    out, _ = sample_run
    for kind, schema in (("kept", DOCUMENT_SCHEMA), ("dropped", DROPPED_SCHEMA), ("failed", FAILED_SCHEMA)):
        files = sorted((out / kind).glob("*.parquet"))
        assert files, kind
        for fpath in files:
            got = pq.read_schema(fpath)
            assert got.remove_metadata().equals(schema.remove_metadata()), kind
            assert got.metadata[b"mdfs.schema"] == kind.replace("kept", "document").encode()


def test_kept_shards_load_with_datasets(sample_run):
    datasets = pytest.importorskip("datasets")
    out, res = sample_run
    ds = datasets.load_dataset("parquet", data_files=str(out / "kept" / "*.parquet"), split="train")
    assert ds.num_rows == len(res["kept"])
    assert set(ds.column_names) == set(DOCUMENT_SCHEMA.names)


def test_kept_rows_are_consistent(sample_run):
    _, res = sample_run
    ids = [r["id"] for r in res["kept"]]
    assert len(ids) == len(set(ids))
    for r in res["kept"]:
        assert r["char_count"] == len(r["text"]) and r["byte_count"] == len(r["text"].encode("utf-8"))
        assert r["language"] in ("zh", "en") and 0.5 <= r["language_score"] <= 1.0
        if r["language"] == "zh":
            assert r["char_count"] >= 200
    texts = [" ".join(r["text"].split()).casefold() for r in res["kept"]]
    assert len(texts) == len(set(texts))  # no exact duplicates survive
    for r in res["dropped"]:
        if r["reason"] == "exact_duplicate":
            assert r["detail"] in ids  # points at the copy kept


def test_rerun_is_identical(sample_run, tmp_path):
    _, first = sample_run
    second = run_job(tmp_path / "again")
    assert_invariant(second)

    def key(rows):
        return sorted((r["id"], r.get("reason")) for r in rows)

    assert key(first["kept"]) == key(second["kept"])
    assert key(first["dropped"]) == key(second["dropped"])
    assert first["funnel"]["sources"] == second["funnel"]["sources"]


def test_multiprocess_runner_matches_in_process(sample_run, tmp_path):
    _, first = sample_run
    mp = run_job(tmp_path / "mp", beam_args=["--runner=DirectRunner", "--direct_running_mode=multi_processing",
                                             "--direct_num_workers=2"])
    assert_invariant(mp)
    assert sorted(r["id"] for r in mp["kept"]) == sorted(r["id"] for r in first["kept"])
    assert mp["funnel"]["sources"] == first["funnel"]["sources"]


def test_size_and_time_limits_end_to_end(tmp_path):
    res = run_job(tmp_path / "limits", sources=["web=" + str(Path(__file__).parents[1] /
                                                             "pipeline/samples/web_zh/*.warc.gz")],
                  sets=["read.max_payload_bytes=60000", "extract.timeout_s=0.000001"])
    assert_invariant(res)
    e = res["funnel"]["sources"]["web"]
    assert e["dropped_by_reason"]["read/too_large"] > 5
    assert e["failed_by_error"]["extract/extract_timeout"] == e["read"] - e["dropped_by_reason"]["read/too_large"]
    assert e["kept"] == 0


def test_cross_source_exact_dedup_and_bad_lines(tmp_path):
    body = real_zh_texts()[0]
    write_jsonl_gz(tmp_path / "a.jsonl.gz", [{"id": "a1", "text": body, "date": "2024-02-01"},
                                             {"id": "a2", "text": "短"}], raw_lines=[b"{broken"])
    write_jsonl_gz(tmp_path / "b.jsonl.gz", [{"id": "b1", "text": "  " + body + "\n", "date": "2023-01-01"}])
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"sources:\n  news_a: {{paths: ['{tmp_path}/a.jsonl.gz'], priority: 1}}\n"
                   f"  news_b: {{paths: ['{tmp_path}/b.jsonl.gz'], priority: 2}}\n")
    res = run_job(tmp_path / "o1", config=str(cfg))
    assert_invariant(res)
    assert [r["id"] for r in res["kept"]] == ["a1"]  # source priority wins over the earlier date
    dup = [r for r in res["dropped"] if r["reason"] == "exact_duplicate"]
    assert [(r["id"], r["detail"]) for r in dup] == [("b1", "a1")]
    assert [r["error_kind"] for r in res["failed"]] == ["json_error"]
    res2 = run_job(tmp_path / "o2", config=str(cfg), sets=["exact_dedup.keep=[earliest_date]"])
    assert_invariant(res2)
    assert [r["id"] for r in res2["kept"]] == ["b1"]


def _mdfs(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "mdfs.pipeline.commands.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def test_cli_run_refuses_existing_output_then_overwrites(tmp_path):
    src = tmp_path / "n.jsonl.gz"
    write_jsonl_gz(src, [{"id": "x", "text": real_zh_texts()[1]}])
    out = tmp_path / "out"
    r = _mdfs("run", "--output", str(out), "--source", f"news={src}")
    assert r.returncode == 0, r.stderr
    assert (out / "_SUCCESS").exists() and (out / "funnel.json").exists() and (out / "config.yaml").exists()
    assert "news" in r.stdout and "ok: read = kept + dropped + failed" in " ".join(r.stdout.split())
    r2 = _mdfs("run", "--output", str(out), "--source", f"news={src}")
    assert r2.returncode == 2 and "--overwrite" in r2.stderr
    stale = out / "kept" / "stale-from-an-old-run.parquet"
    stale.write_bytes(b"x")
    r3 = _mdfs("run", "--output", str(out), "--source", f"news={src}", "--overwrite")
    assert r3.returncode == 0, r3.stderr
    assert not stale.exists()
    funnel = json.loads((out / "funnel.json").read_text())
    assert funnel["total"]["kept"] == 1 and funnel["total"]["invariant_ok"]
    assert funnel["sources"]["news"]["read"] == 1 and funnel["sources"]["news"]["invariant_ok"]


def test_cli_config_errors_are_reported(tmp_path):
    r = _mdfs("run", "--output", str(tmp_path / "o"), "--source", "nonsense")
    assert r.returncode == 2 and "NAME=GLOB" in r.stderr
    r = _mdfs("run", "--output", str(tmp_path / "o"), "--source", f"x={tmp_path}/nothing-*.warc.gz")
    assert r.returncode == 2 and "no input file" in r.stderr


def test_readme_report_example_is_what_the_samples_give(sample_run):
    """The README shows report.md's mix table for the bundled samples: it must be the real one."""
    import re
    from pathlib import Path

    from mdfs.pipeline.commands.report import write_report

    out, _ = sample_run
    write_report(str(out))
    row = r"\| (common_crawl|common_crawl_wet|forum|news|web_zh) \| [0-9.]+K? \| [0-9.]+% \|"
    real = [ln for ln in (out / "report" / "report.md").read_text().splitlines() if re.match(row, ln)]
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    shown = [ln for ln in readme.splitlines() if re.match(row, ln)]
    assert len(real) == 5 and shown == real, (shown, real)  # every sample source, the empty one too

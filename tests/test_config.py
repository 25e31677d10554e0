from __future__ import annotations

import pytest

from mdfs.pipeline.config import SAMPLES_DIR, load_config
from mdfs.pipeline.schema import Fields


def test_defaults_point_at_bundled_samples():
    cfg = load_config()
    assert set(cfg.sources) == {"common_crawl", "web_zh", "common_crawl_wet", "news", "forum"}
    for src in cfg.sources.values():
        assert all(p.startswith(str(SAMPLES_DIR)) for p in src.paths)
        assert src.fields == Fields(id="id", text="text", url="url", date="date")
    assert cfg.coarse.zh.min_chars == 200 and cfg.coarse.langid.model.endswith("lid.176.ftz")


def test_source_flag_replaces_samples_and_repeats():
    cfg = load_config(sources=["cc=/data/a/*.warc.gz", "cc=/data/b/*.warc.gz", "news=/n/*.jsonl"])
    assert list(cfg.sources) == ["cc", "news"]
    assert cfg.sources["cc"].paths == ["/data/a/*.warc.gz", "/data/b/*.warc.gz"]


def test_config_file_then_cli(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("sources:\n  books:\n    paths: /b/*.parquet\n    fields: {text: content}\n"
                 "extract: {timeout_s: 3}\n")
    cfg = load_config(str(f), sets=["extract.timeout_s=7", "coarse.zh.min_chars=50"],
                      sources=["news=/n/*.jsonl.gz"])
    assert cfg.extract.timeout_s == 7 and cfg.coarse.zh.min_chars == 50
    # a field map replaces the default one: the fields it leaves out are not read
    assert cfg.sources["books"].fields == Fields(id=None, text="content", url=None, date=None)
    assert cfg.sources["news"].fields == Fields(id="id", text="text", url="url", date="date")
    assert cfg.sources["books"].paths == ["/b/*.parquet"]
    assert set(cfg.sources) == {"books", "news"}
    assert cfg.extract.isolation == "subprocess"  # untouched defaults survive the merge


@pytest.mark.parametrize("bad", [["nokey"], ["=v"]])
def test_bad_assignments(bad):
    with pytest.raises(ValueError):
        load_config(sets=bad)


def test_bad_format(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("sources:\n  x: {paths: a, format: csv}\n")
    with pytest.raises(ValueError):
        load_config(str(f))

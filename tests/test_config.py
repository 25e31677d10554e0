from __future__ import annotations

import pytest

from mdfs.pipeline.config import SAMPLES_DIR, load_config, load_defaults
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


def test_the_loaded_configuration_is_the_typed_model():
    """Stages read typed sections: numbers are numbers once, at load time, not cast again by each reader."""
    from mdfs.pipeline.schema import Coarse, MdfsConfig, Shingle, Source

    cfg = load_config(sets=["mix.tokens_per_param=1e1", "near_dedup.threshold=1"])
    assert isinstance(cfg, MdfsConfig) and isinstance(cfg.coarse, Coarse)
    assert type(cfg.coarse.zh.min_chars) is int and cfg.coarse.zh.min_chars == 200
    assert type(cfg.mix.tokens_per_param) is float and cfg.mix.tokens_per_param == 10.0  # PyYAML reads 1e1 as a string
    assert type(cfg.near_dedup.threshold) is float
    # free-form maps stay dicts, of typed values
    assert isinstance(cfg.sources, dict) and isinstance(cfg.sources["news"], Source)
    assert isinstance(cfg.near_dedup.shingles["zh"], Shingle) and cfg.near_dedup.shingles["zh"].unit == "char"
    assert all(type(v) is float for v in cfg.fine.thresholds.values())


def test_assignments_after_loading_are_checked_and_recorded():
    from pydantic import ValidationError

    cfg = load_config(sources=["s=x.jsonl"])
    with pytest.raises(ValidationError):
        cfg.run.max_failed_share = 2  # a share: at most 1
    cfg.dedup_against = ["/runs/a"]  # as `mdfs run` makes the paths absolute
    cfg.fine.languages = ["zh"]
    given = cfg.as_dict()
    assert given["dedup_against"] == ["/runs/a"] and given["fine"]["languages"] == ["zh"]


def test_the_effective_configuration_is_written_as_given(tmp_path):
    """config.yaml keeps each value in the form it was given (20 stays 20, 1e-1 stays 1e-1,
    one path stays one path) and in the defaults' key order, and reads back to the same bytes."""
    import yaml

    from mdfs.pipeline.config import as_given

    f = tmp_path / "c.yaml"
    f.write_text("sources:\n  s:\n    priority: 3\n    paths: x.jsonl\n"
                 "near_dedup: {threshold: 1}\n"
                 "decontamination:\n  sets:\n    one: {paths: e.jsonl, action: redact}\n")
    cfg = load_config(str(f), sets=["fine.default_threshold=1e-1", "mix.tokens_per_param=20"])
    text = yaml.safe_dump(cfg.as_dict(), sort_keys=False, allow_unicode=True)
    assert "\n  threshold: 1\n" in text and "tokens_per_param: 20\n" in text
    assert "default_threshold: 1e-1\n" in text and "paths: e.jsonl\n" in text
    assert list(cfg.as_dict()) == list(load_defaults())  # the defaults' key order
    assert list(cfg.as_dict()["sources"]["s"])[:2] == ["format", "fields"]  # source_defaults' order, then the source's
    again = load_config(None, None, base=as_given(yaml.safe_load(text)))  # how `mdfs refilter` reads a run back
    assert yaml.safe_dump(again.as_dict(), sort_keys=False, allow_unicode=True) == text


def test_a_stage_dofn_holding_its_typed_section_pickles_and_runs():
    """Beam pickles DoFns to its workers: the typed section travels with them."""
    from apache_beam.internal import pickler

    from mdfs.pipeline.stages.coarse import CoarseFilterDoFn, source_languages
    from mdfs.pipeline.records import Document
    from mdfs.pipeline.schema import Coarse

    from helpers import real_zh_texts

    cfg = load_config(sources=["s=x.jsonl"], sets=["sources.s.languages=[zh]"])
    fn = pickler.loads(pickler.dumps(CoarseFilterDoFn(cfg.coarse, source_languages(cfg))))
    assert isinstance(fn.cfg, Coarse) and fn.cfg == cfg.coarse
    fn.setup()
    kept = list(fn.process(Document(key="k1", id="a", source="s", text=real_zh_texts()[0])))
    short = list(fn.process(Document(key="k2", id="b", source="s", text="短短的一句话。" * 3)))
    assert len(kept) == 1 and kept[0].language == "zh"
    assert short[0].tag == "dropped" and short[0].value.reason == "too_short"


def test_the_stages_are_built_with_their_typed_sections(tmp_path):
    from mdfs.pipeline.build import build_context
    from mdfs.pipeline.stages import running

    cfg = load_config(sources=["s=x.jsonl"], sets=["pii.enabled=true", "near_dedup.enabled=true"])
    build = build_context(cfg, str(tmp_path))
    stages = {s.name: s.transform(build) for s in running(build)}
    assert stages["coarse"].cfg is cfg.coarse
    assert stages["pii"].cfg is cfg.pii and stages["pii"].sources is cfg.sources
    assert stages["near_dedup"].cfg is cfg.near_dedup

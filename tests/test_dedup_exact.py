"""Exact dedup as Beam joins, on planted duplicates with known answers."""
from __future__ import annotations

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from mdfs.pipeline.stages.dedup_exact import ExactDedup, keep_rank, normalise_for_exact, text_hash
from mdfs.pipeline.records import Document
from mdfs.pipeline.schema import ExactDedup as ExactDedupSection

TEXT = "人工智能正在改变世界。Large language models need clean data."


def doc(key, source, text=TEXT, date=None):
    return Document(key=key, id=f"id-{key}", source=source, text=text, date=date)


def test_normalisation_collapses_width_case_space():
    assert text_hash("ＡＢＣ  Hello\n世界") == text_hash("abc hello 世界")
    assert normalise_for_exact(" A\tB ") == "a b"
    assert text_hash("世界") != text_hash("世间")


def test_keep_rank_orders_by_criteria_then_id():
    pri = {"news": 1, "web": 2}
    a, b = doc("a", "web", date="2020-01-01"), doc("b", "news", date="2024-01-01")
    assert keep_rank(b, ["source_priority", "earliest_date"], pri) < keep_rank(a, ["source_priority", "earliest_date"], pri)
    assert keep_rank(a, ["earliest_date"], pri) < keep_rank(b, ["earliest_date"], pri)
    c = doc("c", "web", date=None)
    assert keep_rank(a, ["earliest_date"], pri) < keep_rank(c, ["earliest_date"], pri)  # unknown date loses


def test_exact_dedup_in_beam():
    docs = [
        doc("w1", "web", date="2021-05-01"),
        doc("n1", "news", text="  " + TEXT.upper().replace(" ", " \n\t") + "\n", date="2023-01-01"),  # same after normalisation
        doc("w2", "web", date="2020-01-01"),
        doc("u1", "web", text="完全不同的一篇文章。"),
        doc("u2", "news", text="另一篇独立的文章。"),
    ]
    cfg = ExactDedupSection(enabled=True, keep=["source_priority", "earliest_date"])
    with BeamTestPipeline() as p:
        res = p | beam.Create(docs) | ExactDedup(cfg, {"news": 1, "web": 2})
        assert_that(res.kept | "K" >> beam.Map(lambda d: d.key), equal_to(["n1", "u1", "u2"]), label="kept")
        assert_that(res.dropped | "D" >> beam.Map(lambda d: (d.key, d.reason, d.detail)),
                    equal_to([("w1", "exact_duplicate", "id-n1"), ("w2", "exact_duplicate", "id-n1")]),
                    label="dropped")


def test_exact_dedup_date_policy():
    docs = [doc("w1", "web", date="2021-05-01"), doc("n1", "news", date="2023-01-01"), doc("w2", "web", date="2020-01-01")]
    with BeamTestPipeline() as p:
        res = p | beam.Create(docs) | ExactDedup(ExactDedupSection(enabled=True, keep=["earliest_date"]), {"news": 1, "web": 2})
        assert_that(res.kept | "K" >> beam.Map(lambda d: d.key), equal_to(["w2"]))

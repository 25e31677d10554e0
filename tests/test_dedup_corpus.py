"""The corpus-wide dedup step (pipeline/stages/dedup_corpus.py) decides exactly what
the Beam stages ExactDedup + NearDedup decide, on planted families that span
units, and its memory does not hold the signatures."""
from __future__ import annotations

import hashlib
import json
import random
import tracemalloc

import apache_beam as beam
import numpy as np
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mdfs.pipeline.stages import dedup_exact
from mdfs.pipeline.config import load_config
from mdfs.pipeline.stages.dedup_corpus import DedupRowDoFn, DedupRows, decide, write_rows, write_stats
from mdfs.pipeline.stages.dedup_exact import ExactDedup, rank_of
from mdfs.pipeline.stages.dedup_near import NearDedup, bucket_edges, decide_cluster
from mdfs.pipeline.stages.minhash import MinHasher, band_keys, estimated_jaccard
from mdfs.pipeline.records import Document

from helpers import real_en_texts, real_zh_texts

PRIORITIES = {"news": 1, "web": 2}  # "blog" is not configured: it ranks last
ZH_ALPHA = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动"
EN_WORDS = "river market engine season window garden letter doctor silver planet".split()


def _key(i: int) -> str:
    return hashlib.blake2b(str(i).encode(), digest_size=12).hexdigest()


def _zh_edit(text: str, rate: float, rng: random.Random) -> str:
    return "".join(rng.choice(ZH_ALPHA) if rng.random() < rate else ch for ch in text)


def _en_edit(text: str, rate: float, rng: random.Random) -> str:
    return " ".join(rng.choice(EN_WORDS) if rng.random() < rate else w for w in text.split())


def planted_docs(seed: int = 5) -> list[tuple[int, Document]]:
    """(unit, document) of planted families, members spread over 4 units."""
    rng = random.Random(seed)
    zh, en = real_zh_texts(), real_en_texts()
    out, counter = [], iter(range(10 ** 6))

    def add(text, source="web", date=None, lang=None, doc_id=None, unit=None):
        i = next(counter)
        out.append((rng.randrange(4) if unit is None else unit,
                    Document(key=_key(i), id=doc_id or f"d{i:03d}", source=source, text=text, language=lang,
                             date=date)))

    for f in range(6):  # Chinese and English families: near copies, exact copies, sources and dates
        base, lang, edit = ((zh[f][:1500], "zh", _zh_edit) if f % 2 == 0
                            else (" ".join(en[f].split()[:400]), "en", _en_edit))
        add(base, "web", "2022-03-01", lang)
        add(edit(base, 0.01, rng), "news", "2023-01-01", lang)
        add(edit(base, 0.02, rng), rng.choice(["web", "blog"]), rng.choice([None, "2021-06-01"]), lang)
        add("  " + base.upper() + "\n", "web", "2020-01-01", lang)  # an exact copy after normalisation
        add(base, "blog", None, None)  # an exact copy, no language label
        add(edit(base, 0.3, rng), "web", None, lang)  # too different: its own document
    words = en[2].split()[:600]  # an English chain: c0 ~ c1 ~ c2, c0 !~ c2
    other = en[3].split()
    w1 = words[:100] + other[:45] + words[145:]
    w2 = w1[:400] + other[100:145] + w1[445:]
    for text, date, unit in ((" ".join(words), "2020-01-01", 0), (" ".join(w1), "2021-01-01", 1),
                             (" ".join(w2), "2022-01-01", 2)):
        add(text, "web", date, "en", unit=unit)
    tie = zh[1][:1200]  # ties: equal rank, so the id decides; equal ids, so the key decides
    add(tie, "web", "2024-01-01", "zh", doc_id="tie-b", unit=3)
    add(tie, "web", "2024-01-01", "zh", doc_id="tie-a", unit=1)
    add(_zh_edit(tie, 0.01, rng), "web", "2024-01-01", "zh", doc_id="tie-a", unit=2)  # same length, same id
    add(zh[3][:900], "news", "2019-01-01", "zh", doc_id="same-id", unit=0)
    add(zh[3][:900], "news", "2019-01-01", "zh", doc_id="same-id", unit=2)
    for text in ("……", "！！！", "--"):  # no shingles at all: equal signatures (all slots at the maximum)
        add(text, "web", None, None)
    for t in zh[7:10] + en[7:10]:  # unique documents
        add(t[:1500], "news", None, None)
    return out


def corpus_decisions(units_docs, cfg, tmp_path, per_file: int = 7):
    """Rows written in several files per unit, then decide(): {key: row}, near_dedup.json."""
    maker = DedupRows(cfg, PRIORITIES)
    rows = [maker.row(doc, unit) for unit, doc in units_docs]
    folder = tmp_path / "rows"
    folder.mkdir(parents=True)
    for i in range(0, len(rows), per_file):
        write_rows(rows[i:i + per_file], folder / f"part-{i:04d}.parquet")
    result = decide(folder, cfg, tmp_path / "work", batch_rows=5)
    out = {}
    for path in sorted(result.folder.glob("*.parquet")):
        unit = int(path.stem.split("-")[1])
        for r in pq.read_table(path).to_pylist():
            assert r["unit"] == unit
            out[r["key"]] = r
    stats_path = tmp_path / "corpus_near_dedup.json"
    if result.near_stats is not None:
        write_stats(result, str(stats_path))
    return out, (json.loads(stats_path.read_text()) if result.near_stats is not None else None)


def expected_from(decisions: dict):
    kept = sorted((k, r["id"], r["dedup_cluster"], r["dedup_cluster_size"]) for k, r in decisions.items()
                  if r["verdict"] == "kept")
    dropped = sorted((k, r["id"], r["stage"], r["verdict"], r["detail"]) for k, r in decisions.items()
                     if r["verdict"] != "kept")
    return kept, dropped


def run_beam(docs, cfg, stats_path, kept, dropped):
    """Today's stages on the DirectRunner, asserted to give ``kept`` and ``dropped``."""
    with BeamTestPipeline() as p:
        exact = p | beam.Create(docs) | "Exact" >> ExactDedup(cfg.exact_dedup, PRIORITIES)
        near = exact.kept | "Near" >> NearDedup(cfg.near_dedup, PRIORITIES, stats_path=str(stats_path))
        assert_that(near.kept | "K" >> beam.Map(lambda d: (d.key, d.id, d.dedup_cluster, d.dedup_cluster_size)),
                    equal_to(kept), label="kept")
        drops = (exact.dropped, near.dropped) | beam.Flatten()
        assert_that(drops | "D" >> beam.Map(lambda d: (d.key, d.id, d.stage, d.reason, d.detail)),
                    equal_to(dropped), label="dropped")


@pytest.mark.parametrize("variant", ["default", "longest_unverified"])
def test_same_decisions_as_the_beam_stages(tmp_path, variant):
    cfg = load_config()
    if variant == "longest_unverified":
        cfg = load_config(sets=["exact_dedup.keep=[earliest_date, source_priority]", "near_dedup.keep=[longest]",
                                "near_dedup.verify=false"])
    units_docs = planted_docs()
    decisions, stats = corpus_decisions(units_docs, cfg, tmp_path)
    kept, dropped = expected_from(decisions)
    if variant == "default":  # known answers, so that agreement is not agreement on nothing
        assert {r[3] for r in dropped} == {"exact_duplicate", "near_duplicate"}
        assert len(dropped) >= 20 and stats["documents_in_components"] > 0 and stats["unconverged_nodes"] == 0
        assert sorted((r["id"], r["verdict"]) for r in decisions.values() if r["id"].startswith("tie-"))[0] == \
            ("tie-a", "kept")
        unit_of = {r["id"]: r["unit"] for r in decisions.values() if not r["id"].startswith(("tie-", "same-"))}
        # a copy in one unit drops copies in others
        assert any(decisions[k]["unit"] != unit_of.get(detail, decisions[k]["unit"]) for k, *_, detail in dropped)
    run_beam([d for _, d in units_docs], cfg, tmp_path / "near_dedup.json", kept, dropped)
    assert json.loads((tmp_path / "near_dedup.json").read_text()) == stats


def test_chain_and_ties_known_answers(tmp_path):
    cfg = load_config()
    units_docs = planted_docs()
    decisions, _ = corpus_decisions(units_docs, cfg, tmp_path)
    chain = sorted((d.date, d.key) for _, d in units_docs if d.date in ("2020-01-01", "2021-01-01", "2022-01-01")
                   and d.language == "en" and len(d.text.split()) == 600)
    c0, c1, c2 = (decisions[k] for _, k in chain)
    assert (c0["verdict"], c0["dedup_cluster"], c0["dedup_cluster_size"]) == ("kept", c0["id"], 2)
    assert (c1["verdict"], c1["stage"], c1["detail"]) == ("near_duplicate", "near_dedup", c0["id"])
    assert (c2["verdict"], c2["dedup_cluster"], c2["dedup_cluster_size"]) == ("kept", c2["id"], 1)
    same = sorted((d.key, decisions[d.key]["verdict"]) for _, d in units_docs if d.id == "same-id")
    assert [v for _, v in same] == ["kept", "exact_duplicate"]  # equal rank and id: the smaller key is kept


def test_exact_only_and_near_only(tmp_path):
    units_docs = planted_docs()[:20]
    for name, cfg in (("exact", load_config(sets=["near_dedup.enabled=false"])),
                      ("near", load_config(sets=["exact_dedup.enabled=false"]))):
        decisions, stats = corpus_decisions(units_docs, cfg, tmp_path / name)
        verdicts = {r["verdict"] for r in decisions.values()}
        if name == "exact":
            assert stats is None and verdicts == {"kept", "exact_duplicate"}
            assert all(r["dedup_cluster"] is None for r in decisions.values())
        else:
            assert "exact_duplicate" not in verdicts and "near_duplicate" in verdicts


def test_refusals(tmp_path):
    cfg = load_config()
    rows = [DedupRows(cfg, PRIORITIES).row(d, u) for u, d in planted_docs()[:3]]
    write_rows(rows + [rows[0]], tmp_path / "dup.parquet")
    with pytest.raises(ValueError, match="more than one dedup row"):
        decide(tmp_path / "dup.parquet", cfg, tmp_path / "w1")
    other = load_config(sets=["near_dedup.num_perm=128"])
    write_rows(rows, tmp_path / "ok.parquet")
    with pytest.raises(ValueError, match="signature is not 512 bytes"):
        decide(tmp_path / "ok.parquet", other, tmp_path / "w2")
    with pytest.raises(ValueError, match="dedup-against"):
        decide(tmp_path / "ok.parquet", load_config(dedup_against=["x"]), tmp_path / "w3")


# --- a reference made of the Beam stages' own functions, on random rows -----------------------

def reference(rows: list[dict], cfg: dict) -> dict:
    """{key: (verdict, detail, cluster, size)} from dedup_exact.decide, bucket_edges,
    estimated_jaccard and decide_cluster, with a plain union-find."""
    ex, near = cfg.exact_dedup, cfg.near_dedup
    by_key = {r["key"]: r for r in rows}
    rank = {r["key"]: rank_of(ex.keep, r["priority"], r["date"], r["char_count"], r["id"], r["key"])
            for r in rows}
    groups = {}
    for r in rows:
        groups.setdefault(r["text_hash"], []).append((rank[r["key"]], r["key"], r["id"]))
    out, survivors = {}, []
    for g in groups.items():
        for key, (kept_key, kept_id, _) in dedup_exact.decide(g):
            if kept_key == key:
                survivors.append(key)
            else:
                out[key] = ("exact_duplicate", kept_id, None, None)
    sig = {k: np.frombuffer(by_key[k]["signature"], dtype="<u4") for k in survivors}
    bands = len(by_key[survivors[0]]["band_keys"]) // 8
    buckets = {}
    for k in survivors:
        for b in range(bands):
            buckets.setdefault((b, by_key[k]["band_keys"][8 * b:8 * b + 8]), []).append(k)
    edges = {e for bucket in buckets.items() for e in bucket_edges(bucket)}
    thr = float(near.threshold)
    if near.verify:
        edges = {(a, b) for a, b in edges if estimated_jaccard(sig[a], sig[b]) >= thr}
    parent = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x
    for a, b in edges:
        parent[find(a)] = find(b)
    comps = {}
    for k in parent:
        comps.setdefault(find(k), []).append(k)
    decided = {}
    for label, members in comps.items():
        info = [(rank_of(near.keep, by_key[k]["priority"], by_key[k]["date"], by_key[k]["char_count"],
                         by_key[k]["id"], k), k, by_key[k]["id"], sig[k].tobytes()) for k in members]
        decided.update(decide_cluster(thr)((label, info)))
    for k in survivors:
        verdict, kept_id, size = decided.get(k, ("keep", by_key[k]["id"], 1))
        out[k] = ("near_duplicate", kept_id, None, None) if verdict == "drop" else ("kept", None, kept_id, size)
    return out


@st.composite
def random_rows(draw):
    """Families of random signatures (a base and copies with some slots changed), planted exact
    hashes, random ranks and colliding ids: every branch of both stages in a few rows."""
    rng = random.Random(draw(st.integers(0, 2 ** 32)))
    num_perm, bands, rows_per = 16, 4, 4
    out, i = [], 0
    for _ in range(draw(st.integers(1, 6))):
        base = np.array([rng.randrange(2 ** 32) for _ in range(num_perm)], dtype="<u4")
        exact_hash = rng.randbytes(16)
        for _ in range(draw(st.integers(1, 5))):
            sig = base.copy()
            for slot in rng.sample(range(num_perm), rng.choice([0, 1, 2, 4, 6, 10])):
                sig[slot] = rng.randrange(2 ** 32)
            out.append({"unit": rng.randrange(3), "key": _key(i), "id": f"id{rng.randrange(6)}",
                        "source": "web", "priority": rng.choice([1, 2]),
                        "date": rng.choice([None, "2020", "2021"]), "char_count": rng.choice([10, 11]),
                        "text_hash": exact_hash if rng.random() < 0.3 else rng.randbytes(16),
                        "signature": sig.tobytes(),
                        "band_keys": b"".join(bytes.fromhex(k[2:]) for k in band_keys(sig, bands, rows_per)),
                        "shingle_unit": rng.choice(["char 5-grams", "word 5-grams"])})
            i += 1
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=random_rows(), verify=st.booleans(), threshold=st.sampled_from([0.5, 0.75, 0.9]))
def test_random_families_match_the_stage_functions(tmp_path_factory, rows, verify, threshold):
    cfg = load_config(sets=["near_dedup.num_perm=16", "near_dedup.bands=4", "near_dedup.rows=4",
                            f"near_dedup.verify={str(verify).lower()}", f"near_dedup.threshold={threshold}",
                            "near_dedup.keep=[longest, earliest_date]"])
    tmp = tmp_path_factory.mktemp("r")
    write_rows(rows, tmp / "rows.parquet")
    result = decide(tmp / "rows.parquet", cfg, tmp / "work", batch_rows=4)
    got = {}
    for path in result.folder.glob("*.parquet"):
        for r in pq.read_table(path).to_pylist():
            got[r["key"]] = (r["verdict"], r["detail"], r["dedup_cluster"], r["dedup_cluster_size"])
    assert got == reference(rows, cfg)


# --- memory --------------------------------------------------------------------------------------

def _random_rows(n: int, seed: int) -> list[dict]:
    """n rows of random 256-slot signatures, one family of 5 near copies in every 50 documents."""
    rng = np.random.default_rng(seed)
    sigs = rng.integers(0, 2 ** 32, size=(n, 256), dtype=np.uint32)
    fam = np.arange(n) % 50 < 5
    base = (np.arange(n) // 50) * 50
    sigs[fam] = sigs[base[fam]]
    sigs[fam, :20] = rng.integers(0, 2 ** 32, size=(int(fam.sum()), 20), dtype=np.uint32)
    return [{"unit": i % 4, "key": _key(seed * 10 ** 7 + i), "id": f"doc{i}", "source": "web", "priority": 1,
             "date": None, "char_count": 1000, "text_hash": hashlib.blake2b(str(i % (n - 7)).encode(),
                                                                          digest_size=16).digest(),
             "signature": s.tobytes(), "band_keys": b"".join(bytes.fromhex(k[2:]) for k in band_keys(s, 25, 10)),
             "shingle_unit": "char 5-grams"} for i, s in enumerate(sigs)]


def test_memory_does_not_hold_the_signatures(tmp_path, monkeypatch):
    """Python-side peak (numpy arrays included, tracemalloc) of decide() on N and 4N documents:
    it grows by far less than the 3N x 1 KB of signatures added.  Signatures are read in
    chunks of CHUNK documents (16,384 by default, here 256 so that the chunk is smaller than N)."""
    from mdfs.pipeline.stages import dedup_corpus

    monkeypatch.setattr(dedup_corpus, "CHUNK", 256)
    cfg = load_config()
    write_rows(_random_rows(100, 1), tmp_path / "warm.parquet")
    decide(tmp_path / "warm.parquet", cfg, tmp_path / "warm")  # imports (scipy) outside the measure
    peaks = {}
    for n in (2000, 8000):
        write_rows(_random_rows(n, n), tmp_path / f"rows{n}.parquet")
        tracemalloc.start()
        result = decide(tmp_path / f"rows{n}.parquet", cfg, tmp_path / f"w{n}", batch_rows=512)
        peaks[n] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert result.counts["near_duplicate"] >= n // 50 * 3, result.counts  # the families were found
        assert result.counts["exact_duplicate"] >= 7
    growth = peaks[8000] - peaks[2000]
    assert 0 < growth < 0.25 * 6000 * 1024, peaks
    assert growth / 6000 < 150, peaks  # bytes per document added (module docstring: about 70)


def test_row_fields_come_from_the_stage_functions():
    cfg = load_config()
    doc = Document(key="k", id="i", source="blog", text=real_zh_texts()[0][:800], language=None, date=None)
    row = DedupRows(cfg, PRIORITIES).row(doc, 3)
    near = cfg.near_dedup
    sig = MinHasher(near.num_perm, near.seed, near.shingles).signature(doc.text, doc.language)
    assert row["signature"] == sig.tobytes() and row["shingle_unit"] == "char 5-grams"
    assert row["band_keys"].hex() == "".join(k[2:] for k in band_keys(sig, 25, 10))
    assert row["text_hash"].hex() == dedup_exact.text_hash(doc.text)
    assert row["priority"] == 1 << 30 and row["unit"] == 3
    with BeamTestPipeline() as p:  # the same row from the DoFn a unit's job runs
        rows = p | beam.Create([doc]) | beam.ParDo(DedupRowDoFn(cfg, PRIORITIES, 3))
        assert_that(rows, equal_to([row]))


def test_empty_input_and_one_exact_group(tmp_path):
    cfg = load_config()
    write_rows([], tmp_path / "empty.parquet")
    result = decide(tmp_path / "empty.parquet", cfg, tmp_path / "w0")
    assert result.counts == {"kept": 0, "exact_duplicate": 0, "near_duplicate": 0}
    assert result.near_stats["candidate_edges"] == 0 and not list(result.folder.iterdir())
    maker = DedupRows(cfg, PRIORITIES)
    docs = [Document(key=_key(i), id=f"i{i}", source="web", text="the same short text") for i in range(3)]
    write_rows([maker.row(d, 7) for d in docs], tmp_path / "one.parquet")
    result = decide(tmp_path / "one.parquet", cfg, tmp_path / "w1")
    rows = pq.read_table(result.unit_path(7)).to_pylist()
    kept = min(docs, key=lambda d: ("i" + d.id, d.key))  # equal rank: the smallest id
    assert {r["key"]: (r["verdict"], r["detail"]) for r in rows} == {
        d.key: ("kept", None) if d is kept else ("exact_duplicate", kept.id) for d in docs}
    assert result.near_stats["documents_per_shingle_unit"] == {"word 5-grams": 1}

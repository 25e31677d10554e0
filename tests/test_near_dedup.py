"""Near-dedup: signatures against datasketch, shingling, banding parameters,
measured accuracy on planted near-duplicates with known exact Jaccard,
site templates, the Beam stage (keep policy, chains, determinism)."""
from __future__ import annotations

import random

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to
from datasketch import MinHash

from mdfs.pipeline.config import load_config
from mdfs.pipeline.stages.dedup_near import NearDedup
from mdfs.pipeline.stages.extract_worker import extract_text
from mdfs.pipeline.stages.minhash import (MinHasher, band_keys, candidate_probability, char_shingle_hashes,
                                   estimated_jaccard, lsh_params, word_shingle_hashes)
from mdfs.pipeline.records import Document

from helpers import real_en_texts, real_zh_texts

CFG = load_config().near_dedup
ZH = real_zh_texts()


EN = real_en_texts()


def test_signatures_are_datasketch_signatures():
    hasher = MinHasher(128, 42)
    for hv in (char_shingle_hashes(ZH[0], 5), word_shingle_hashes(EN[0], 5)):
        ref = MinHash(num_perm=128, seed=42, hashfunc=lambda x: x)
        ref.update_batch([int(x) for x in hv])
        assert np.array_equal(hasher.signature_of_hashes(hv), ref.hashvalues)
    lean = hasher.lean(hasher.signature(ZH[0], "zh"))
    assert lean.jaccard(hasher.lean(hasher.signature(ZH[0], "zh"))) == 1.0


def test_shingling_by_language():
    hasher = MinHasher(64, 1, CFG.shingles)
    # Chinese: characters, punctuation and spaces ignored
    assert np.array_equal(hasher.shingle_hashes("今天 天气，很好！", "zh"), hasher.shingle_hashes("今天天气很好", "zh"))
    # English: words, case and punctuation ignored
    assert np.array_equal(hasher.shingle_hashes("The Cat sat, on the mat.", "en"),
                          hasher.shingle_hashes("the cat sat on the mat", "en"))
    assert hasher.shingle_hashes("a b c d e f", "en").size == 2  # two word 5-grams
    assert hasher.shingle_hashes("", "zh").size == 0
    assert (hasher.signature("", "en") == np.iinfo(np.uint32).max).all()


def test_permutations_and_optimiser_are_datasketchs():
    """mdfs computes datasketch's affine32 permutations and its LSH optimiser's
    (bands, rows) with numpy (no datasketch import at run time): the same values."""
    from datasketch.lsh import _optimal_param

    from mdfs.pipeline.stages.minhash import affine32_permutations, optimal_bands_rows

    for num_perm, seed in ((1, 0), (64, 1), (112, 7), (256, 1), (300, 12345)):
        a, b = affine32_permutations(num_perm, seed)
        ref_a, ref_b = MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations
        assert np.array_equal(a, ref_a) and np.array_equal(b, ref_b)
        assert a.dtype == np.uint32 and b.dtype == np.uint32
    for num_perm in (16, 64, 112, 128, 256):
        for threshold in (0.5, 0.7, 0.8, 0.9, 0.95):
            for fp_w, fn_w in ((0.5, 0.5), (0.05, 0.95), (0.9, 0.1)):
                ref = _optimal_param(threshold, num_perm, fp_w, fn_w)
                assert optimal_bands_rows(threshold, num_perm, fp_w, fn_w) == ref, (threshold, num_perm, fp_w)


def test_banding_parameters():
    b, r = lsh_params(0.8, 256, 0.05, 0.95)
    assert (b, r) == (25, 10)
    assert candidate_probability(0.85, b, r) > 0.99 and candidate_probability(0.5, b, r) < 0.03
    assert lsh_params(0.8, 128, 0.5, 0.5, bands=16, rows=8) == (16, 8)
    with pytest.raises(ValueError):
        lsh_params(0.8, 128, 0.5, 0.5, bands=20, rows=8)
    sig = MinHasher(256, 1).signature(ZH[0], "zh")
    keys = band_keys(sig, b, r)
    assert len(keys) == 25 and len(set(keys)) == 25


def _edit(text: str, rate: float, rng: random.Random, alphabet: str) -> str:
    out = []
    for ch in text:
        x = rng.random()
        if x < rate / 3:
            continue  # delete
        if x < 2 * rate / 3:
            out.append(rng.choice(alphabet))  # substitute
            continue
        out.append(ch)
        if x < rate:
            out.append(rng.choice(alphabet))  # insert
    return "".join(out)


def _true_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    sa, sb = set(a.tolist()), set(b.tolist())
    return len(sa & sb) / len(sa | sb)


def test_accuracy_on_planted_near_duplicates():
    """Recall >= 0.95 for true J >= 0.85, false positives <= 1 % for J <= 0.7
    (candidate by LSH band AND verified by estimated Jaccard >= threshold)."""
    hasher = MinHasher(CFG.num_perm, CFG.seed, CFG.shingles)
    b, r = lsh_params(CFG.threshold, CFG.num_perm, CFG.false_positive_weight, CFG.false_negative_weight)
    rng = random.Random(7)
    zh_alpha = "".join(sorted(set("".join(ZH))))[:3000]
    en_alpha = "abcdefghijklmnopqrstuvwxyz     "
    high, low = [], []
    for lang, texts, alpha in (("zh", ZH, zh_alpha), ("en", EN, en_alpha)):
        for i in range(240):
            base = texts[i % len(texts)]
            start = rng.randrange(max(1, len(base) - 3000))
            base = base[start:start + 3000]
            rate = rng.choice([0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.08, 0.12])
            copy = _edit(base, rate, rng, alpha)
            ha, hb = hasher.shingle_hashes(base, lang), hasher.shingle_hashes(copy, lang)
            j = _true_jaccard(ha, hb)
            sa, sb = hasher.signature_of_hashes(ha), hasher.signature_of_hashes(hb)
            found = bool(set(band_keys(sa, b, r)) & set(band_keys(sb, b, r))) and \
                estimated_jaccard(sa, sb) >= CFG.threshold
            if j >= CFG.threshold + 0.05:
                high.append(found)
            elif j <= CFG.threshold - 0.1:
                low.append(found)
    assert len(high) >= 100 and len(low) >= 100, (len(high), len(low))
    recall, fp = sum(high) / len(high), sum(low) / len(low)
    assert recall >= 0.95, recall
    assert fp <= 0.01, fp


def test_shared_site_template_does_not_collapse():
    nav = "".join(f"<li><a href='/c{i}'>栏目{i} 频道导航</a></li>" for i in range(60))
    footer = "<footer>" + "".join(f"<p>友情链接 合作伙伴{i} 关于我们 联系我们 版权所有</p>" for i in range(30)) + "</footer>"

    def page(body):
        return (f"<html><head><title>新闻</title></head><body><nav><ul>{nav}</ul></nav>"
                f"<article><h1>标题</h1><p>{body}</p></article>{footer}</body></html>")

    hasher = MinHasher(CFG.num_perm, CFG.seed, CFG.shingles)
    t1 = extract_text(page(ZH[0][:1500]), None, {})
    t2 = extract_text(page(ZH[1][:1500]), None, {})
    assert t1 and t2
    assert estimated_jaccard(hasher.signature(t1, "zh"), hasher.signature(t2, "zh")) < 0.2


def _doc(key, text, lang="zh", source="web", date=None):
    return Document(key=key, id=f"id-{key}", source=source, text=text, language=lang, date=date)


def _planted_docs():
    rng = random.Random(3)
    alpha = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动"
    base = ZH[0][:2000]
    docs = [_doc("a0", base, date="2024-01-03"),
            _doc("a1", _edit(base, 0.003, rng, alpha), date="2024-01-01"),  # earliest: kept
            _doc("a2", _edit(base, 0.003, rng, alpha), date="2024-01-05"),
            _doc("u1", ZH[1][:2000]), _doc("u2", EN[0], lang="en"), _doc("u3", EN[1], lang="en")]
    # a chain: c0 ~ c1 ~ c2, but c0 and c2 are not near-duplicates of each other
    words = EN[2].split()[:600]
    other = EN[3].split()
    w1 = words[:100] + other[:45] + words[145:]
    w2 = w1[:400] + other[100:145] + w1[445:]
    c0, c1, c2 = " ".join(words), " ".join(w1), " ".join(w2)
    docs += [_doc("c0", c0, "en", date="2020-01-01"), _doc("c1", c1, "en", date="2021-01-01"),
             _doc("c2", c2, "en", date="2022-01-01")]
    return docs


def test_near_dedup_stage_keep_policy_and_chains():
    docs = _planted_docs()
    hasher = MinHasher(CFG.num_perm, CFG.seed, CFG.shingles)
    s = {d.key: hasher.signature(d.text, d.language) for d in docs}
    j = lambda a, b: estimated_jaccard(s[a], s[b])  # noqa: E731
    assert j("c0", "c1") >= 0.8 and j("c1", "c2") >= 0.8 and j("c0", "c2") < 0.8  # a real chain
    with BeamTestPipeline() as p:
        res = p | beam.Create(docs) | NearDedup(CFG, {"web": 1})
        assert_that(res.kept | "K" >> beam.Map(lambda d: (d.key, d.dedup_cluster, d.dedup_cluster_size)),
                    equal_to([("a1", "id-a1", 3), ("u1", "id-u1", 1), ("u2", "id-u2", 1), ("u3", "id-u3", 1),
                              ("c0", "id-c0", 2), ("c2", "id-c2", 1)]), label="kept")
        assert_that(res.dropped | "D" >> beam.Map(lambda d: (d.key, d.reason, d.detail)),
                    equal_to([("a0", "near_duplicate", "id-a1"), ("a2", "near_duplicate", "id-a1"),
                              ("c1", "near_duplicate", "id-c0")]), label="dropped")


def test_near_dedup_longest_policy_and_no_verification():
    docs = _planted_docs()[:3]
    longest = max(docs, key=lambda d: len(d.text)).key
    cfg = CFG.model_copy(update={"keep": ["longest"], "verify": False})
    with BeamTestPipeline() as p:
        res = p | beam.Create(docs) | NearDedup(cfg, {"web": 1})
        assert_that(res.kept | beam.Map(lambda d: d.key), equal_to([longest]))


def test_shingle_unit_follows_the_script_when_the_label_is_absent_or_wrong():
    hasher = MinHasher(64, 1, CFG.shingles)
    zh_text, en_text = ZH[0][:800], EN[0][:800]
    char5, word5 = CFG.shingles["zh"], CFG.shingles["default"]
    assert hasher.shingle_spec(zh_text, "zh") == char5
    assert hasher.shingle_spec(zh_text, None) == char5  # coarse off, or JSONL without language ID
    assert hasher.shingle_spec(zh_text, "en") == char5  # a wrong label
    assert hasher.shingle_spec(en_text, "zh") == word5
    assert hasher.shingle_spec(en_text, None) == word5
    assert hasher.shingle_spec("これは日本語の文章です。漢字も使います。" * 5, None) == CFG.shingles["ja"]
    assert np.array_equal(hasher.shingle_hashes(zh_text, None), hasher.shingle_hashes(zh_text, "zh"))


def test_chinese_near_duplicate_recall_without_language_labels():
    """The recall target holds with the coarse stage off (no language on the documents)."""
    hasher = MinHasher(CFG.num_perm, CFG.seed, CFG.shingles)
    b, r = lsh_params(CFG.threshold, CFG.num_perm, CFG.false_positive_weight, CFG.false_negative_weight)
    rng = random.Random(11)
    alpha = "".join(sorted(set("".join(ZH))))[:3000]
    high = []
    for i in range(160):
        base = ZH[i % len(ZH)]
        start = rng.randrange(max(1, len(base) - 3000))
        base = base[start:start + 3000]
        copy = _edit(base, rng.choice([0.002, 0.005, 0.01, 0.015, 0.02]), rng, alpha)
        if _true_jaccard(hasher.shingle_hashes(base, "zh"), hasher.shingle_hashes(copy, "zh")) < CFG.threshold + 0.05:
            continue
        sa, sb = hasher.signature(base, None), hasher.signature(copy, None)
        high.append(bool(set(band_keys(sa, b, r)) & set(band_keys(sb, b, r)))
                    and estimated_jaccard(sa, sb) >= CFG.threshold)
    assert len(high) >= 100 and sum(high) / len(high) >= 0.95, (len(high), sum(high))


def test_remembered_signature_is_the_computed_one_and_per_parameters():
    """The near-dedup stage and the dedup state rows sign the same text one after
    the other: the second call is answered from memory, equal to a fresh
    computation, read-only, and never shared between different parameters."""
    text = EN[0]
    a, b, other = MinHasher(112, 1), MinHasher(112, 1), MinHasher(112, 2)
    first = a.signature(text, "en")
    again = b.signature(text, "en")
    assert again is first  # remembered across hashers of the same parameters
    assert np.array_equal(first, a.signature_of_hashes(a.shingle_hashes(text, "en")))
    with pytest.raises(ValueError):
        first[0] = 0
    seeded = other.signature(text, "en")
    assert seeded is not first and not np.array_equal(seeded, first)
    assert np.array_equal(seeded, other.signature_of_hashes(other.shingle_hashes(text, "en")))


def test_script_share_counts_letters_only_at_the_threshold():
    """3 Han of 10 letters is exactly MIN_SCRIPT_SHARE: Chinese; digits, spaces,
    punctuation and marks between them are not letters (counting any of them
    would put the share below the threshold), one more Latin letter would."""
    from mdfs.pipeline.stages.minhash import script_language

    assert script_language("漢 1, 字! 22 漢。 ab-cd ef\u0301g ... 42") == "zh"
    assert script_language("漢 1, 字! 22 漢。 ab-cd ef\u0301gh ... 42") is None

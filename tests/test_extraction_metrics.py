"""The scores of the extraction evaluation (issue #38) on cases with known answers."""
from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "extraction_metrics", Path(__file__).resolve().parents[1] / "bench" / "extraction_metrics.py")
em = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(em)


def _lcs_table(a, b):
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def test_tokens_are_cjk_characters_and_words():
    assert em.tokens("北京时间 Hello, World's 2024年") == ["北", "京", "时", "间", "hello", "world", "s", "2024", "年"]


def test_bit_parallel_lcs_matches_the_table():
    rng = random.Random(38)
    for _ in range(300):
        a = [rng.choice("abcd") for _ in range(rng.randint(0, 40))]
        b = [rng.choice("abcde") for _ in range(rng.randint(0, 40))]
        assert em.lcs_length(a, b) == _lcs_table(a, b)


def test_bag_and_rouge_disagree_on_order():
    ref = em.tokens("甲乙丙丁")
    shuffled = em.tokens("丁丙乙甲")
    assert em.bag_scores(shuffled, ref) == (1.0, 1.0, 1.0)
    assert em.rouge_l(shuffled, ref)[2] == pytest.approx(0.25)
    p, r, f = em.bag_scores(em.tokens("甲乙 chrome"), ref)
    assert (p, r) == (pytest.approx(2 / 3), 0.5) and f == pytest.approx(4 / 7)


def test_snippets_and_failure_modes():
    counts = em.snippet_counts("The  main\ntext. Share this", ["main text."], ["Share this", "Subscribe"])
    assert counts == {"tp": 1, "fn": 0, "fp": 1, "tn": 1}
    assert em.failure_mode([], 0, 0, [], "") == "empty"
    assert em.failure_mode(["x"], 0.0, 0.05, [], "x") == "chrome_only"
    assert em.failure_mode(["x"], 0.4, 0.9, ["great post, thanks for sharing"], "a great post, thanks for sharing") \
        == "comments_kept"
    assert em.failure_mode(["x"], 0.9, 0.3, [], "x") == "truncated"
    assert em.failure_mode(["x"], 0.3, 0.9, [], "x") == "bloated"


def test_comment_lines_skip_wrappers_and_reference_text():
    html = ("<html><body class='comments-open'><div class='post comments-open'><p>正文第一段，足够长的一句话在这里。</p>"
            "<div id='comments'><p>这条评论不在人工标注的正文里面，<a href='#'>应当被认出</a>。</p>"
            "<p>短评论</p></div></div>"
            "<aside>" + "侧栏文字很多很多。" * 40 + "</aside></body></html>")
    lines = em.comment_lines(html, "正文第一段，足够长的一句话在这里。")
    # the wrapper holding the article is skipped, its comment block is not; short nodes are ignored
    assert lines == ["这条评论不在人工标注的正文里面，"]

"""Scores for bench/eval_extraction.py: tokens, bag-of-tokens P/R/F1, ROUGE-L,
snippet matching and failure modes.  Kept apart from the runner so that the
metrics can be tested on their own."""
from __future__ import annotations

import re
from collections import Counter

# A token is one CJK character (Han, kana, Hangul: these scripts do not separate
# words with spaces) or one run of other word characters, lowercased: the
# tokenisation of the first measurement in issue #38.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")
_SPACE = re.compile(r"\s+")


def tokens(text: str | None) -> list[str]:
    return _TOKEN.findall((text or "").lower())


def prf(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def bag_scores(out: list[str], ref: list[str]) -> tuple[float, float, float]:
    """Precision, recall, F1 of the multiset of output tokens against the reference's."""
    if not out or not ref:
        both_empty = not out and not ref
        return (float(both_empty),) * 3
    common = sum((Counter(out) & Counter(ref)).values())
    p, r = common / len(out), common / len(ref)
    return p, r, prf(p, r)


def lcs_length(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence, bit-parallel (Hyyrö 2004):
    one big-integer step per token of ``b``, so 50,000 x 50,000 tokens take
    well under a second instead of the 2.5e9 cells of the table."""
    if len(a) < len(b):
        a, b = b, a
    masks: dict[str, int] = {}
    for i, tok in enumerate(a):
        masks[tok] = masks.get(tok, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for tok in b:
        u = v & masks.get(tok, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - v.bit_count()


def rouge_l(out: list[str], ref: list[str]) -> tuple[float, float, float]:
    """ROUGE-L precision, recall, F1 on token sequences: rewards text in the reference's order."""
    if not out or not ref:
        both_empty = not out and not ref
        return (float(both_empty),) * 3
    n = lcs_length(out, ref)
    p, r = n / len(out), n / len(ref)
    return p, r, prf(p, r)


def normalise(text: str | None) -> str:
    return _SPACE.sub(" ", text or "").strip()


def snippet_counts(out: str | None, with_: list[str], without: list[str]) -> dict:
    """trafilatura's own evaluation (tests/comparison.py): a "with" snippet found is a
    true positive, missed a false negative; a "without" snippet found a false positive."""
    text = normalise(out)
    tp = sum(normalise(s) in text for s in with_) if text else 0
    fp = sum(normalise(s) in text for s in without) if text else 0
    return {"tp": tp, "fn": len(with_) - tp, "fp": fp, "tn": len(without) - fp}


def failure_mode(out_tokens: list[str], p: float, r: float, comment_lines: list[str], out_text: str) -> str:
    """One label per page.  Thresholds are this script's choice, shown in docs/EXTRACTION.md:
    empty (no output), chrome_only (output shares < 10 % of the reference), comments_kept
    (a line of a comment block absent from the reference appears in the output),
    truncated (precise but < 50 % of the reference), bloated (< 50 % of the output
    is reference text), ok."""
    if not out_tokens:
        return "empty"
    if r < 0.1:
        return "chrome_only"
    norm = normalise(out_text)
    if any(line in norm for line in comment_lines):
        return "comments_kept"
    if r < 0.5:
        return "truncated"
    if p < 0.5:
        return "bloated"
    return "ok"


_COMMENT_ATTR = re.compile(r"comment|reply|评论|留言", re.I)


def comment_lines(html: str, reference: str) -> list[str]:
    """Text nodes (>= 15 characters) of elements whose id or class names a comment
    block and which hold no text of the human reference."""
    import lxml.html

    try:
        root = lxml.html.fromstring(html)
    except Exception:  # noqa: BLE001 - an unparsable page has no comment blocks to find
        return []
    ref = normalise(reference)
    page_chars = len(root.text_content())
    found: list[str] = []
    for el in root.iter():
        if not isinstance(el.tag, str) or el.tag in ("html", "body"):
            continue
        attrs = f"{el.get('id', '')} {el.get('class', '')}"
        if not _COMMENT_ATTR.search(attrs):
            continue
        content = el.text_content()
        if len(content) > page_chars / 2:  # a wrapper ("comments-open" on a page div), not a comment block
            continue
        lines = [normalise(t) for t in el.itertext()]
        lines = [line for line in lines if len(line) >= 15]
        if any(line in ref for line in lines):  # holds reference text: a wrapper around the article
            continue
        found.extend(lines)
        if len(found) > 200:
            break
    return sorted(set(found))

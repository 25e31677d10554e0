"""Planted contamination with known answers, built from the bundled real text
(Apache-2.0 samples, see pipeline/samples/NOTICE.md): evaluation items in
C-Eval / MMLU shape made from passages of real articles, documents that
contain them in four ways, and near-miss decoys that do not.

Items: a question stem (some stems are shared by many items, as exam
templates are), a passage of 1-3 real sentences, four options taken from the
same article, an answer letter.  Chinese items come from the Chinese news
articles, English items from the English ones; hosts (the unrelated text
around a planted item) come from other documents (the forum sample for
Chinese), so a host never contains an item.

Planted variants (each one document):
* ``verbatim``: the item as a question bank prints it, between two stretches of host text;
* ``reformatted``: full-width letters and digits, ASCII instead of Chinese punctuation (or the
  reverse), extra spaces and line breaks, other option labels ("(A)", "A、"), "【答案】";
* ``partial``: a contiguous first two thirds of the item, when that is at least one n-gram
  (20 characters, 13 words); shorter parts of short items (``partial_below_n``: two thirds of a
  10-word sentence) are below the reach of any n-gram rule and are measured separately;
* ``in_long_article``: the item in the middle of >= 5,000 characters of unrelated text.

Decoys (each one document; none should be flagged):
* ``same_topic``: another question on the same article: a stem, a different passage of it and
  different options, inside host text (shares topic, stems and vocabulary, not the item's text);
* ``near_miss``: the item's stem and passage, with every 8th character (Chinese) or 6th word
  (English) of the passage replaced, starting near its beginning: shares many short fragments,
  no run of n tokens (a short stem followed by the first n - len(stem) tokens of the passage
  verbatim *is* a run of n shared tokens, and is matched by design).
"""
from __future__ import annotations

import gzip
import json
import random
import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[1] / "pipeline" / "samples"
ZH_STEMS = ["阅读下面的材料，根据材料内容，下列理解和分析不正确的一项是哪一项",  # long: a template shared by many items
            "下列说法正确的是", "根据材料，以下推断合理的是", "关于这段文字，理解正确的是"]
EN_STEMS = ["Read the following passage carefully and then choose which of the following statements about it is true",
            "According to the passage,", "Which statement is best supported by the text:", "The author suggests that"]
_HAN = re.compile(r"[\u4e00-\u9fff]")


@dataclass
class Item:
    id: str
    lang: str
    stem: str
    passage: str
    options: list
    answer: str
    article: int

    def row(self) -> dict:
        if not self.options:  # a bare sentence item (CLUE-style): the text field
            return {"id": self.id, "text": self.passage}
        return {"id": self.id, "question": f"{self.stem}\n{self.passage}", "options": self.options,
                "answer": self.answer}

    def rendered(self) -> str:
        if not self.options:
            return self.passage
        opts = "\n".join(f"{'ABCD'[i]}. {o}" for i, o in enumerate(self.options))
        return f"{self.stem}\n{self.passage}\n{opts}\n答案：{self.answer}" if self.lang == "zh" else \
            f"{self.stem}\n{self.passage}\n{opts}\nAnswer: {self.answer}"

    def chars_or_words(self) -> int:
        return _size(self.rendered(), self.lang)


@dataclass
class Doc:
    id: str
    text: str
    kind: str  # a planted variant or a decoy kind
    item: str | None  # the planted item (None for decoys)
    lang: str


def _news():
    rows = [json.loads(line) for line in gzip.open(SAMPLES / "news" / "news_sample.jsonl.gz", "rt", encoding="utf-8")]
    zh = [r["text"] for r in rows if _HAN.search(r["text"][:300])]
    en = [r["text"] for r in rows if not _HAN.search(r["text"][:300])]
    return zh, en


def _forum():
    import pyarrow.parquet as pq

    return [t for t in pq.read_table(SAMPLES / "forum" / "magic-html_forum.parquet").column("text").to_pylist()
            if t and _HAN.search(t)]


def _sentences(text: str, lang: str) -> list[str]:
    pattern = r"(?<=[。！？])" if lang == "zh" else r"(?<=[.!?])\s+"
    return [s.strip() for s in re.split(pattern, text.replace("\n", " " if lang == "en" else "")) if s.strip()]


def _passages(text: str, lang: str, lo: int, hi: int) -> list[str]:
    """Runs of whole sentences of lo..hi characters (zh) or words (en), not overlapping."""
    size = (lambda s: len(_HAN.findall(s))) if lang == "zh" else (lambda s: len(s.split()))
    out, cur = [], []
    for s in _sentences(text, lang):
        cur.append(s)
        joined = ("" if lang == "zh" else " ").join(cur)
        if size(joined) >= lo:
            if size(joined) <= hi:
                out.append(joined)
            cur = []
    return out


def _size(text: str, lang: str) -> int:
    return len(_HAN.findall(text)) if lang == "zh" else len(re.findall(r"\w+", text))


def _shortest(passage: str, lang: str, floor: int) -> str:
    """The start of a passage, at least ``floor`` Han characters or words, to a clause end where one is near."""
    if lang == "zh":
        han = [i for i, c in enumerate(passage) if _HAN.match(c)]
        end = han[floor - 1] + 1 if len(han) >= floor else len(passage)
        stop = re.search(r"[，。；！？]", passage[end:end + 12])
        return passage[:end + stop.end()] if stop else passage[:end]
    words, out = passage.split(), []
    for w in words:  # whole words until the floor is reached (counted as the tokenizer does: runs of \w)
        out.append(w)
        if len(re.findall(r"\w+", " ".join(out))) >= floor:
            break
    return " ".join(out)


def _first_two_thirds(text: str, lang: str) -> str:
    """A contiguous first two thirds of an item (in characters for Chinese, in words otherwise)."""
    if lang == "zh":
        return text[:(len(text) * 2) // 3]
    words = text.split(" ")
    return " ".join(words[:(len(words) * 2) // 3])


def _phrases(text: str, lang: str) -> list[str]:
    parts = re.split(r"[，。；：！？、,;:.!?\n]", text)
    if lang == "zh":
        return [p.strip() for p in parts if 4 <= len(_HAN.findall(p)) <= 12]
    return [p.strip() for p in parts if 2 <= len(p.split()) <= 6]


def _longest_common(a: str, b: str) -> int:
    norm = lambda s: re.sub(r"[\W_]+", "", s.lower())  # noqa: E731
    a, b = norm(a), norm(b)
    return SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b)).size


def _reformat(text: str, lang: str, rng: random.Random) -> str:
    """Punctuation, width, whitespace and label changes a page makes to an item."""
    text = re.sub(r"^([A-D])\. ", lambda m: rng.choice([f"({m[1]}) ", f"{m[1]}、", f"{m[1]}．"]), text, flags=re.M)
    text = text.replace("答案：", "【答案】").replace("Answer: ", "ANSWER - ")
    swap = {"，": ", ", "。": ". ", "：": ": ", "；": "; ", "？": "? "} if lang == "zh" else \
        {",": "，", ".": "。", ":": "：", "?": "？"}
    text = "".join(swap.get(c, c) for c in text)
    wide = "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() and rng.random() < 0.5 else c for c in text)
    out = []
    for i, c in enumerate(wide):  # stray spaces and line breaks
        out.append(c)
        if lang == "zh" and i % 9 == 4:
            out.append(rng.choice([" ", "\u3000", "\n"]))
        if lang == "en" and c == " " and rng.random() < 0.2:
            out.append(rng.choice([" ", "\n", "\t"]))
    return "".join(out).upper() if lang == "en" and rng.random() < 0.3 else "".join(out)


def _near_miss(item: Item, rng: random.Random) -> str:
    if item.lang == "zh":
        chars = list(item.passage)
        pool = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所"
        for i in range(3, len(chars), 8):
            chars[i] = rng.choice(pool.replace(chars[i], ""))
        return "".join(chars)
    count = iter(range(1 << 30))

    def swap(m):  # every 6th token (a run of \w, as the tokenizer counts) from the third on
        i = next(count)
        if i % 6 != 2:
            return m[0]
        return rng.choice([w for w in ("very", "often", "many", "quite", "still", "also", "then") if w != m[0].lower()])

    return re.sub(r"\w+", swap, item.passage)


def build(seed: int = 7, per_lang: int = 150):
    """(items, planted docs, decoy docs, decoys skipped because they share text with an item)."""
    rng = random.Random(seed)
    zh_news, en_news = _news()
    hosts = {"zh": _forum(), "en": en_news[len(en_news) // 2:]}
    sources = {"zh": zh_news, "en": en_news[:len(en_news) // 2]}
    items, spare = [], {}
    for lang, lo, hi in (("zh", 30, 160), ("en", 6, 60)):
        pool = []
        for a, text in enumerate(sources[lang]):
            phrases = _phrases(text, lang)
            for p in _passages(text, lang, lo, hi):
                if len(set(phrases)) >= 12:
                    pool.append((a, p, phrases))
        rng.shuffle(pool)
        taken = pool[:per_lang]
        spare[lang] = pool[per_lang:]
        stems = ZH_STEMS if lang == "zh" else EN_STEMS
        for k, (a, passage, phrases) in enumerate(taken):
            if k % 5 == 4 and _size(passage, lang) >= (50 if lang == "zh" else 10):
                # one item in five: a bare sentence at the length floor (50 characters, 10 words)
                short = _shortest(passage, lang, 50 if lang == "zh" else 10)
                items.append(Item(f"{lang}-{k:04d}", lang, "", short, [], "", a))
                continue
            stem = stems[0] if k % 3 == 0 else rng.choice(stems[1:])
            options = rng.sample(sorted({p for p in phrases if p not in passage}), 4)
            items.append(Item(f"{lang}-{k:04d}", lang, stem, passage, options, rng.choice("ABCD"), a))
    planted, decoys, skipped = [], [], 0

    def host(lang: str, chars: int) -> str:
        """Unrelated text of about ``chars`` characters, cut between words."""
        text = ""
        while len(text) < chars:
            h = rng.choice(hosts[lang])
            start = rng.randrange(max(1, len(h) - 2000))
            text += h[start:start + 2000] + "\n"
        cut = text[:chars]
        return cut if lang == "zh" else cut.rsplit(" ", 1)[0].split(" ", 1)[-1]

    for it in items:
        r = it.rendered()
        planted.append(Doc(f"{it.id}/verbatim", f"{host(it.lang, 400)}\n{r}\n{host(it.lang, 400)}", "verbatim",
                           it.id, it.lang))
        planted.append(Doc(f"{it.id}/reformatted", f"{host(it.lang, 300)}\n{_reformat(r, it.lang, rng)}\n"
                                                   f"{host(it.lang, 300)}", "reformatted", it.id, it.lang))
        part = _first_two_thirds(r, it.lang)
        kind = "partial" if _size(part, it.lang) >= (20 if it.lang == "zh" else 13) else "partial_below_n"
        planted.append(Doc(f"{it.id}/{kind}", f"{host(it.lang, 300)}\n{part}\n{host(it.lang, 300)}", kind,
                           it.id, it.lang))
        sep = "" if it.lang == "zh" else " "
        planted.append(Doc(f"{it.id}/in_long_article", f"{host(it.lang, 3000)}{sep}{r}{sep}{host(it.lang, 3000)}",
                           "in_long_article", it.id, it.lang))
    by_article: dict = {}
    for it in items:
        by_article.setdefault((it.lang, it.article), []).append(it)
    for n, it in enumerate(items):
        others = [s for s in spare[it.lang] if s[0] == it.article] or spare[it.lang]
        a, passage, phrases = rng.choice(others)
        neighbours = by_article[(it.lang, it.article)]
        stems = ZH_STEMS if it.lang == "zh" else EN_STEMS
        taken = {o for other in neighbours for o in other.options}  # no option of any item on this article
        choices = sorted({p for p in phrases if p not in passage and p not in taken})
        options = rng.sample(choices, 4) if len(choices) >= 4 else []
        decoy = Item(f"decoy-{n}", it.lang, stems[0] if n % 2 else rng.choice(stems), passage, options, "A", a)
        if any(_longest_common(passage, o.passage) >= 15 for o in neighbours):
            skipped += 1  # repeats part of an item: not a decoy
        else:
            decoys.append(Doc(f"{it.id}/same_topic", f"{host(it.lang, 400)}\n{decoy.rendered()}\n{host(it.lang, 400)}",
                              "same_topic", None, it.lang))
        decoys.append(Doc(f"{it.id}/near_miss", f"{host(it.lang, 400)}\n{it.stem}\n{_near_miss(it, rng)}\n"
                                                f"{host(it.lang, 400)}", "near_miss", None, it.lang))
    return items, planted, decoys, skipped


def write_items(items: list, path: Path) -> Path:
    path.write_text("".join(json.dumps(i.row(), ensure_ascii=False) + "\n" for i in items), encoding="utf-8")
    return path

"""Decontamination stage: keep evaluation sets (C-Eval, CMMLU, GAOKAO-Bench,
CLUE, MMLU, ...) out of the corpus.

Runs after the coarse rules and before pii and dedup, off until
``decontamination.sets`` names at least one set.  Design (docs/DECONTAMINATION.md):

* **One normalisation on both sides.**  NFKC (full-width -> ASCII, compatibility
  forms), case folding, then a token stream in which every CJK character
  (Han, kana, hangul; also Thai/Lao/Khmer/Myanmar, written without spaces) is
  one token, every run of other letters and digits is one token, and
  punctuation, symbols and whitespace only separate.  Evaluation items are
  indexed as given and converted to Simplified Chinese (OpenCC t2s), because
  the coarse stage converts Traditional documents (and, when it keeps
  Traditional text, also as s2t).
* **n-grams by script.**  An item whose tokens are mostly CJK characters is
  indexed as character n-grams (default 20: measured, one English word
  carries the information of ~1.5 Chinese characters, so GPT-3's 13 words
  are ~20 characters), any other as word n-grams (default 13, GPT-3).  An item
  shorter than n but at least ``min_item_tokens`` is indexed whole (one
  n-gram of its own length), so a 10-word item still matches when it appears
  in full; shorter items are listed in ``decontamination.json`` as too short.
* **A shared, compact index.**  The launcher reads the items once and writes
  ``RUN_DIR/decontamination/index.npz``: a sorted ``uint64`` array of n-gram
  hashes with the item each belongs to (12 bytes per n-gram; 20,000 items are
  1.3 M n-grams, 16 MB) that every worker process loads once (``setup``) and
  shares across its threads; a document is looked up with one vectorised
  ``searchsorted``.  n-grams found in more than ``max_ngram_items`` items of
  the index are question templates ("which of the following ..."), not
  evidence, and are left out (counted).
* **Verdict.**  A document is contaminated by an item when it contains at
  least ``min(min_matches, n-grams of the item)`` of the item's n-grams.  The
  set's action decides: ``drop`` (reason ``contaminated``, detail: set, item
  id, matched n-grams) or ``redact`` (the matched spans removed, counted in the
  ``contamination.redacted_spans`` signal).  Any matching drop set wins.

Hashes are a polynomial rolling hash over code points (token values) and over
token values (n-grams), both mod 2**64 with numpy's wrapping arithmetic, then
mixed with splitmix64: stable across processes and runners (Python's ``hash``
is salted per process).  Every document is processed in windows of
``WINDOW`` characters that overlap by ``OVERLAP``, so memory per document is
bounded whatever its length.
"""
from __future__ import annotations

import gzip
import io
import json
import threading
import unicodedata
import zlib
from dataclasses import dataclass

import apache_beam as beam
import numpy as np

from .config import decontamination_sets
from .stage import BuildContext, BundleTotals, Stage, StageContext, StageResult

STAGE = "decontaminate"
REASON = "contaminated"
FOUND = "found"  # output tag: per-document (key, count) pairs for decontamination.json
WINDOW, OVERLAP = 65536, 8192  # characters per hashing window, and their overlap (>> any n-gram's span)
MAX_ITEM_CHARS = 200_000  # an evaluation item longer than this is cut (none is; a wrong field would be)

_U64 = np.uint64
_B_CHAR = 0x100000001B3 * 2 + 1  # odd, so invertible mod 2**64
_B_TOKEN = 0x9E3779B97F4A7C15
_MASK = (1 << 64) - 1
_SPLITMIX = (_U64(0xBF58476D1CE4E5B9), _U64(0x94D049BB133111EB))

# --- normalisation and tokens --------------------------------------------------------

CHAR_SCRIPT_RANGES = (  # tokens of one character: scripts written without spaces between words
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x1780, 0x17FF),  # Khmer
    (0x2E80, 0x2FDF),  # CJK radicals
    (0x3005, 0x3007), (0x3021, 0x3029), (0x3038, 0x303B),
    (0x3040, 0x30FF),  # kana
    (0x3130, 0x318F),  # Hangul compatibility Jamo
    (0x31F0, 0x31FF),
    (0x3400, 0x4DBF), (0x4E00, 0x9FFF),  # Han
    (0xAC00, 0xD7AF),  # Hangul syllables
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0x20000, 0x323AF),  # Han extensions B..H
)
SEP, WORD, CHAR = 0, 1, 2
_CLASSES = None
_CLASSES_LOCK = threading.Lock()


def char_classes() -> np.ndarray:
    """Code point -> SEP / WORD / CHAR, built once per process (~0.2 s)."""
    global _CLASSES
    with _CLASSES_LOCK:
        if _CLASSES is None:
            table = np.fromiter((c.isalnum() for c in map(chr, range(0x110000))), dtype=np.uint8,
                                count=0x110000)
            for lo, hi in CHAR_SCRIPT_RANGES:  # their letters are tokens of one character; marks separate
                part = table[lo:hi + 1]
                part[part == WORD] = CHAR
            _CLASSES = table
    return _CLASSES


def normalise(text: str) -> str:
    """The view both sides are matched in: NFKC and case folding (punctuation and
    whitespace are dropped by the tokenizer)."""
    return unicodedata.normalize("NFKC", text).casefold()


def normalise_aligned(text: str) -> tuple[str, np.ndarray]:
    """``normalise`` character by character, with the original index of every
    output character (for redaction when NFKC changes the length)."""
    parts, origin = [], []
    for i, c in enumerate(text):
        n = normalise(c)
        parts.append(n)
        origin.extend([i] * len(n))
    return "".join(parts), np.asarray(origin, dtype=np.int64)


class _Powers:
    """B**i and B**-i mod 2**64 for i < size."""

    def __init__(self, base: int, size: int):
        inv = pow(base, -1, 1 << 64)
        with np.errstate(over="ignore"):
            self.pow, self.inv = (np.cumprod(self._steps(b, size), dtype=_U64) for b in (base, inv))

    @staticmethod
    def _steps(b: int, size: int) -> np.ndarray:
        steps = np.full(size, b, dtype=_U64)
        steps[0] = 1
        return steps


_POWERS: dict = {}


def _powers(base: int, size: int) -> _Powers:
    p = _POWERS.get(base)
    if p is None or len(p.pow) < size:
        p = _POWERS[base] = _Powers(base, max(size, WINDOW + OVERLAP))
    return p


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads the polynomial hashes over all 64 bits."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> _U64(30))
        x = x * _SPLITMIX[0]
        x = x ^ (x >> _U64(27))
        x = x * _SPLITMIX[1]
        return x ^ (x >> _U64(31))


def _window_sums(values: np.ndarray, width, starts: np.ndarray, base: int) -> np.ndarray:
    """sum(values[s + j] * base**j for j < width) for each start s (width: scalar or per start)."""
    pw = _powers(base, len(values) + 1)
    with np.errstate(over="ignore"):
        prefix = np.empty(len(values) + 1, dtype=_U64)
        prefix[0] = 0
        np.cumsum(values * pw.pow[:len(values)], dtype=_U64, out=prefix[1:])
        return (prefix[starts + width] - prefix[starts]) * pw.inv[starts]


@dataclass
class Tokens:
    starts: np.ndarray  # character offset of each token in the normalised text
    ends: np.ndarray
    values: np.ndarray  # uint64 per token
    char_tokens: int  # tokens of one CJK (or Thai, ...) character


def tokenize(norm: str) -> Tokens:
    cp = np.frombuffer(norm.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    cls = char_classes()[cp]
    is_word = cls == WORD
    prev_word = np.concatenate([[False], is_word[:-1]])
    next_word = np.concatenate([is_word[1:], [False]])
    is_char = cls == CHAR
    starts = np.flatnonzero(is_char | (is_word & ~prev_word))
    word_ends = np.flatnonzero(is_word & ~next_word) + 1
    ends = starts + 1
    word_start = is_word[starts]
    ends[word_start] = word_ends  # runs of word characters start and end in order
    values = _mix(_window_sums(cp.astype(_U64), ends - starts, starts, _B_CHAR))
    return Tokens(starts, ends, values, int(is_char.sum()))


def ngram_hashes(values: np.ndarray, n: int) -> np.ndarray:
    """Hash of every n consecutive token values (empty when there are fewer)."""
    if len(values) < n:
        return np.empty(0, dtype=_U64)
    starts = np.arange(len(values) - n + 1)
    with np.errstate(over="ignore"):
        return _mix(_window_sums(values, n, starts, _B_TOKEN) + _U64((n * 0x2545F4914F6CDD1D) & _MASK))


# --- evaluation items --------------------------------------------------------------------

OPTION_LABELS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def render_value(value) -> str:
    """One field of an item as text: option lists and maps as labelled lines
    ("A. ..."), the way question banks print them."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return "\n".join(f"{OPTION_LABELS[i] if i < 26 else i + 1}. {render_value(v)}" for i, v in enumerate(value))
    if isinstance(value, dict):
        return "\n".join(f"{k}. {render_value(v)}" for k, v in value.items())
    if hasattr(value, "tolist"):  # numpy values from Parquet
        return render_value(value.tolist())
    return str(value)


def item_text(row: dict, fields: list[str] | None) -> str | None:
    """The text of one item; None when the row has none of the fields."""
    if fields is None:
        if row.get("text") not in (None, ""):
            return render_value(row["text"])
        if row.get("question") in (None, ""):
            return None
        # options as a list/map (``options``; MMLU's ``choices``) or as columns A, B, C, D (C-Eval, CMMLU)
        options = next((f for f in ("options", "choices") if f in row), None)
        letters = [c for c in OPTION_LABELS if c in row]
        fields = ["question", *([options] if options else letters), "answer"]
    parts = []
    for f in fields:
        value = render_value(row.get(f))
        if value:  # option columns (C-Eval, CMMLU: A, B, C, D) printed with their label, as question banks do
            parts.append(f"{f}. {value}" if len(f) == 1 and f in OPTION_LABELS else value)
    text = "\n".join(parts)
    return text or None


# A field may be as long as the longest text one record can carry (read.max_decompressed_bytes,
# 20 MB); Python's default CSV limit, 131,072 characters, is shorter than some benchmark items.
CSV_FIELD_LIMIT = 20_000_000


def _rows(path: str):
    """(row number, dict) of a JSONL(.gz), Parquet or CSV file, via Beam's filesystems;
    a file that is not what its name says is a ValueError naming it."""
    from apache_beam.io.filesystems import FileSystems

    lower = path.lower()
    with FileSystems.open(path, compression_type="uncompressed") as raw:
        data = raw.read()
    if lower.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{path}: not a whole gzip file ({exc})") from None
        lower = lower[:-3]
    if lower.endswith(".parquet"):
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(io.BytesIO(data))
        except Exception as exc:  # noqa: BLE001 - ArrowInvalid, OSError: truncated or not Parquet
            raise ValueError(f"{path}: unreadable Parquet ({type(exc).__name__}: {exc})") from None
        for i, row in enumerate(table.to_pylist()):
            yield i + 1, row
    elif lower.endswith(".csv"):
        yield from _csv_rows(path, _text(path, data))
    elif lower.endswith((".jsonl", ".json")):
        for i, line in enumerate(_text(path, data).splitlines()):
            if line.strip():
                try:
                    row = json.loads(line)
                except (json.JSONDecodeError, RecursionError) as exc:
                    raise ValueError(f"{path} line {i + 1}: not JSON ({getattr(exc, 'msg', exc)})") from None
                if not isinstance(row, dict):
                    raise ValueError(f"{path} line {i + 1}: not a JSON object")
                yield i + 1, row
    else:
        raise ValueError(f"{path}: not a .jsonl, .jsonl.gz, .parquet or .csv file")


def _text(path: str, data: bytes) -> str:
    if b"\x00" in data[:65536]:  # UTF-8 text never holds a NUL byte; UTF-16 and binary files do
        raise ValueError(f"{path}: a binary file (NUL bytes), not UTF-8 text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _csv_rows(path: str, text: str):
    import csv

    old = csv.field_size_limit(CSV_FIELD_LIMIT)
    try:
        reader = csv.DictReader(io.StringIO(text))
        rows = []
        try:
            for i, row in enumerate(reader):
                rows.append((i + 2, row))  # the header is line 1
        except csv.Error as exc:
            raise ValueError(f"{path} line {reader.line_num}: not CSV ({exc})") from None
    finally:
        csv.field_size_limit(old)
    yield from rows


def is_configured(cfg: dict) -> bool:
    return bool(cfg.get("sets"))


def read_items(name: str, spec: dict):
    """(item id, text) of one set; raises ValueError naming the file and row of a bad item."""
    from .readers import matched_files

    files = matched_files(spec["paths"])
    if not files:
        raise ValueError(f"decontamination.sets.{name}: no file matches {spec['paths']}")
    for path in files:
        base = path.rsplit("/", 1)[-1]
        seen = set()  # keys of the file's rows: a named field no row has is a typo, not an empty option
        for line, row in _rows(path):
            seen.update(row)
            text = item_text(row, spec["fields"])
            if text is None:
                wanted = spec["fields"] or ["text", "or question (+ options, answer)"]
                raise ValueError(f"decontamination.sets.{name}: {path} row {line} has none of the fields "
                                 f"{wanted} (set decontamination.sets.{name}.fields)")
            ident = row.get(spec["id_field"])
            yield (str(ident) if ident not in (None, "") else f"{base}:{line}"), text[:MAX_ITEM_CHARS]
        absent = [f for f in spec["fields"] or [] if f not in seen]
        if absent and seen:
            raise ValueError(f"decontamination.sets.{name}.fields: no row of {path} has {', '.join(map(repr, absent))} "
                             f"(rows have: {', '.join(sorted(map(str, seen))[:8])})")


# --- the index -----------------------------------------------------------------------------

@dataclass
class Index:
    hashes: np.ndarray  # uint64, sorted
    items: np.ndarray  # int32: the item of each hash
    need: np.ndarray  # int32 per item: n-grams a document must share with it
    total: np.ndarray  # int32 per item: its n-grams
    item_set: np.ndarray  # int16 per item
    lengths: list  # the n-gram lengths a document is hashed at
    item_ids: list
    sets: list  # [{name, action}]
    summary: dict  # per set: items, indexed, too_short, template n-grams left out; settings

    def nbytes(self) -> int:
        return int(self.hashes.nbytes + self.items.nbytes + self.need.nbytes + self.total.nbytes
                   + self.item_set.nbytes)

    def save(self, path: str) -> None:
        from apache_beam.io.filesystems import FileSystems

        meta = json.dumps({"lengths": self.lengths, "item_ids": self.item_ids, "sets": self.sets,
                           "summary": self.summary}, ensure_ascii=False).encode("utf-8")
        buf = io.BytesIO()
        np.savez(buf, hashes=self.hashes, items=self.items, need=self.need, total=self.total,
                 item_set=self.item_set, meta=np.frombuffer(meta, dtype=np.uint8))
        with FileSystems.create(path) as fh:
            fh.write(buf.getvalue())

    @classmethod
    def load(cls, path: str) -> "Index":
        from apache_beam.io.filesystems import FileSystems

        with FileSystems.open(path, compression_type="uncompressed") as fh:
            z = np.load(io.BytesIO(fh.read()))
        meta = json.loads(z["meta"].tobytes().decode("utf-8"))
        return cls(z["hashes"], z["items"], z["need"], z["total"], z["item_set"], meta["lengths"],
                   meta["item_ids"], meta["sets"], meta["summary"])

    # -- lookups --

    def _grams(self, norm: str):
        """(hashes, first token char, last token end char) of every n-gram of the
        indexed lengths, window by window."""
        hs, first, last = [], [], []
        step = WINDOW
        for off in range(0, max(len(norm), 1), step):
            chunk = norm[off:off + WINDOW + OVERLAP]
            if not chunk:
                break
            tok = tokenize(chunk)
            for n in self.lengths:
                h = ngram_hashes(tok.values, n)
                if len(h):
                    s = tok.starts[:len(h)]
                    keep = s < step if off + WINDOW < len(norm) else slice(None)  # the overlap is the next window's
                    hs.append(h[keep])
                    first.append(s[keep] + off)
                    last.append(tok.ends[n - 1:][:len(h)][keep] + off)
            if off + WINDOW >= len(norm):
                break
        if not hs:
            empty = np.empty(0, dtype=np.int64)
            return np.empty(0, dtype=_U64), empty, empty
        return np.concatenate(hs), np.concatenate(first), np.concatenate(last)

    def find(self, norm: str):
        """Items the normalised text is contaminated by: (contaminated {item: matched},
        hit hashes, their first char, their end char, the item of each index entry hit)."""
        h, first, last = self._grams(norm)
        if not len(h) or not len(self.hashes):
            return {}, None
        pos = np.searchsorted(self.hashes, h)
        pos[pos == len(self.hashes)] = 0
        hit = self.hashes[pos] == h
        if not hit.any():
            return {}, None
        h, first, last = h[hit], first[hit], last[hit]
        uniq = np.unique(h)
        left = np.searchsorted(self.hashes, uniq, "left")
        right = np.searchsorted(self.hashes, uniq, "right")
        counts = right - left
        entry = np.repeat(left, counts) + (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
        items, matched = np.unique(self.items[entry], return_counts=True)
        bad = matched >= self.need[items]
        found = {int(i): int(m) for i, m in zip(items[bad], matched[bad])}
        return found, (h, first, last, entry)

    def spans(self, hits, items: set) -> list[tuple[int, int]]:
        """Merged character spans (normalised text) of the n-grams that matched ``items``."""
        h, first, last, entry = hits
        wanted = np.unique(self.hashes[entry[np.isin(self.items[entry], np.fromiter(items, dtype=np.int32))]])
        sel = np.isin(h, wanted)
        order = np.argsort(first[sel], kind="stable")
        out: list[list[int]] = []
        for s, e in zip(first[sel][order].tolist(), last[sel][order].tolist()):
            if out and s <= out[-1][1]:
                out[-1][1] = max(out[-1][1], e)
            else:
                out.append([s, e])
        return [(s, e) for s, e in out]


_OPENCC = None


def _item_variants(text: str, traditional: str) -> list[str]:
    """The item as given, in Simplified (t2s; the coarse stage converts
    Traditional documents) and, when Traditional documents are kept, in
    Traditional (s2t)."""
    import opencc

    global _OPENCC
    if _OPENCC is None:
        _OPENCC = opencc.OpenCC("t2s"), opencc.OpenCC("s2t")
    t2s, s2t = _OPENCC
    out = [text]
    for variant in (t2s.convert(text), s2t.convert(text) if traditional == "keep" else None):
        if variant and variant not in out:
            out.append(variant)
    return out


def _template_free(h: np.ndarray, n: int, common: np.ndarray) -> np.ndarray:
    """The n-grams of one item (in text order) that are not mostly question
    template: an n-gram found in many items marks its tokens as template, and an
    n-gram with more than half of its tokens so marked is left out (it would
    match a page that has the stem and a few words of the item)."""
    if not len(common) or not len(h):
        return h
    is_common = np.isin(h, common)
    if not is_common.any():
        return h
    tokens = len(h) + n - 1
    diff = np.zeros(tokens + 1, dtype=np.int32)
    starts = np.flatnonzero(is_common)
    np.add.at(diff, starts, 1)
    np.add.at(diff, starts + n, -1)
    covered = np.concatenate([[0], np.cumsum(np.cumsum(diff)[:tokens] > 0)])
    per_gram = covered[np.arange(len(h)) + n] - covered[np.arange(len(h))]
    return h[per_gram * 2 <= n]


def build_index(cfg: dict, traditional: str = "convert") -> Index:
    """Read every set once and build the index (on the launcher)."""
    ng = cfg["ngrams"]
    sets = decontamination_sets(cfg)
    summary = {"settings": {"ngrams": ng, "min_matches": cfg["min_matches"], "max_ngram_items": cfg["max_ngram_items"]},
               "sets": {}}
    grams, item_set, item_ids, lengths = [], [], [], set()  # grams: per item, [(n, ordered hashes)] per variant
    for si, (name, spec) in enumerate(sets.items()):
        info = {"paths": spec["paths"], "fields": spec["fields"] or "text, else question + options + answer",
                "action": spec["action"], "items": 0, "indexed": 0, "too_short": [], "by_script": {}}
        for ident, text in read_items(name, spec):
            info["items"] += 1
            variants, script, n_tok = [], None, 0
            for variant in _item_variants(text, traditional):
                tok = tokenize(normalise(variant))
                if script is None:
                    n_tok = len(tok.values)
                    script = "cjk" if tok.char_tokens * 2 >= max(n_tok, 1) else "words"
                if len(tok.values) >= ng[script]["min_item_tokens"]:
                    n = min(ng[script]["n"], len(tok.values))
                    variants.append((n, ngram_hashes(tok.values, n)))
                    lengths.add(n)
            if not variants or len(variants[0][1]) == 0 or n_tok < ng[script]["min_item_tokens"]:
                info["too_short"].append({"id": ident, "tokens": n_tok, "script": script,
                                          "min_item_tokens": ng[script]["min_item_tokens"]})
                continue
            grams.append(variants)
            item_ids.append(ident)
            item_set.append(si)
            info["indexed"] += 1
            info["by_script"][script] = info["by_script"].get(script, 0) + 1
        if info["items"] == 0:
            raise ValueError(f"decontamination.sets.{name}: the files {spec['paths']} hold no items")
        summary["sets"][name] = info
    # question templates: an n-gram in more than max_ngram_items items says nothing about any one of them
    per_item = [np.unique(np.concatenate([h for _, h in v])) for v in grams]
    if per_item:
        uniq, counts = np.unique(np.concatenate(per_item), return_counts=True)
        common = uniq[counts > int(cfg["max_ngram_items"])]
    else:
        common = np.empty(0, dtype=_U64)
    all_h, all_i, need, total, only_template = [], [], [], [], []
    for idx, variants in enumerate(grams):
        kept = [_template_free(h, n, common) for n, h in variants]
        mine = np.unique(np.concatenate(kept))
        base = len(np.unique(kept[0]))
        if not len(mine) or not base:
            only_template.append(item_ids[idx])
        total.append(base)
        need.append(max(1, min(int(cfg["min_matches"]), base)))
        all_h.append(mine)
        all_i.append(np.full(len(mine), idx, dtype=np.int32))
    summary["template_ngrams_left_out"] = int(len(common))
    summary["items_only_template"] = only_template
    hashes = np.concatenate(all_h) if all_h else np.empty(0, dtype=_U64)
    items = np.concatenate(all_i) if all_i else np.empty(0, dtype=np.int32)
    order = np.lexsort((items, hashes))
    index = Index(hashes[order], items[order], np.asarray(need, dtype=np.int32), np.asarray(total, dtype=np.int32),
                  np.asarray(item_set, dtype=np.int16), sorted(lengths), item_ids,
                  [{"name": n, "action": s["action"]} for n, s in sets.items()], summary)
    summary["index_bytes"] = index.nbytes()
    summary["index_ngrams"] = int(len(hashes))
    limit = float(cfg["max_index_mb"]) * 1e6
    if index.nbytes() > limit:
        raise ValueError(f"decontamination: the index is {index.nbytes() / 1e6:.0f} MB, over "
                         f"decontamination.max_index_mb = {cfg['max_index_mb']:g}: every worker process holds it in "
                         "memory; raise the limit if the workers have room, or split the sets over runs")
    return index


_BUILT: dict = {}
_LOADED: dict = {}
_LOAD_LOCK = threading.Lock()


def _fingerprint(cfg: dict, traditional: str) -> str:
    return json.dumps([cfg, traditional], sort_keys=True, default=str)


def prepared_index(cfg: dict, traditional: str) -> Index:
    """The index for this configuration, built once per launcher process
    (preflight builds it, so that a bad set is an error before anything is
    written; the graph reuses it)."""
    key = _fingerprint(cfg, traditional)
    if key not in _BUILT:
        _BUILT.clear()
        _BUILT[key] = build_index(cfg, traditional)
    return _BUILT[key]


def loaded_index(path: str) -> Index:
    """The index at ``path``, loaded once per worker process and shared by its threads."""
    with _LOAD_LOCK:
        if path not in _LOADED:
            _LOADED[path] = Index.load(path)
        return _LOADED[path]


# --- the stage ------------------------------------------------------------------------------

def _has_content(text: str) -> bool:
    return any(c.isalnum() for c in text)


class DecontaminateDoFn(beam.DoFn):
    def __init__(self, index_path: str, ctx: StageContext = StageContext(STAGE)):
        self.index_path, self.ctx = index_path, ctx

    def setup(self):
        self.index = loaded_index(self.index_path)
        char_classes()

    def process(self, doc):
        try:
            yield from self._decide(doc)
        except Exception as exc:  # noqa: BLE001 - never pass a document whose check failed
            yield self.ctx.fail(doc, "decontamination_error", f"{type(exc).__name__}: {exc}")

    def _decide(self, doc):
        ix = self.index
        norm = normalise(doc.text)
        found, hits = ix.find(norm)
        if not found:
            yield doc
            return
        sets = ix.sets
        by_set: dict[int, list[int]] = {}
        for item in found:
            by_set.setdefault(int(ix.item_set[item]), []).append(item)
        events = []
        for si, items in by_set.items():
            name = sets[si]["name"]
            events.append(((name, doc.source, "documents"), 1))
            events += [((name, doc.source, "item", ix.item_ids[i]), 1) for i in items]
        drop_sets = [si for si in by_set if sets[si]["action"] == "drop"]
        if drop_sets:
            best = max((i for si in drop_sets for i in by_set[si]), key=lambda i: (found[i] / ix.total[i], -i))
            more = len(found) - 1
            detail = (f"{sets[ix.item_set[best]]['name']}:{ix.item_ids[best]} {found[best]}/{ix.total[best]} n-grams"
                      + (f" (+{more} more item{'s' if more > 1 else ''})" if more else ""))
            for si in drop_sets:
                events.append(((sets[si]["name"], doc.source, "dropped_documents"), 1))
            yield beam.pvalue.TaggedOutput(FOUND, events)
            yield self.ctx.drop(doc, REASON, detail)
            return
        text, spans = self._redact(doc.text, norm, found, hits)
        for si in by_set:
            events.append(((sets[si]["name"], doc.source, "redacted_documents"), 1))
            events.append(((sets[si]["name"], doc.source, "redacted_spans"), len(spans)))
        yield beam.pvalue.TaggedOutput(FOUND, events)
        if not _has_content(text):
            yield self.ctx.drop(doc, REASON, f"nothing left after removing {len(spans)} matched span(s)")
            return
        signals = {**(doc.signals or {}), "contamination.redacted_spans": float(len(spans)),
                   "contamination.redacted_chars": float(len(doc.text) - len(text))}
        yield doc.replace(text=text, signals=signals)

    def _redact(self, text: str, norm: str, found: dict, hits):
        ix = self.index
        if len(norm) == len(text):  # NFKC and case folding kept every character in place
            spans = ix.spans(hits, set(found))
            origin = None
        else:
            norm, origin = normalise_aligned(text)
            found, hits = ix.find(norm)
            spans = ix.spans(hits, set(found)) if found else []
        parts, pos = [], 0
        for s, e in spans:
            if origin is not None:
                s, e = int(origin[s]), int(origin[e - 1]) + 1
            parts.append(text[pos:s])
            pos = max(pos, e)
        parts.append(text[pos:])
        return "".join(parts), spans


class Decontaminate(beam.PTransform):
    """Documents -> StageResult; writes ``decontamination.json`` (per set: items,
    too-short items, items found per source, documents dropped or redacted)."""

    def __init__(self, cfg: dict, output_dir: str, traditional: str = "convert", excerpt_chars: int = 200):
        super().__init__()
        self.cfg, self.output_dir, self.traditional = cfg, output_dir.rstrip("/"), traditional
        self.ctx = StageContext(STAGE, excerpt_chars)

    def expand(self, docs):
        index = prepared_index(self.cfg, self.traditional)
        path = f"{self.output_dir}/decontamination/index.npz"
        index.save(path)
        from .progress import timed

        out = docs | "Match" >> beam.ParDo(timed(DecontaminateDoFn(path, self.ctx), STAGE)).with_outputs(
            "dropped", "failed", FOUND, main="kept")
        summary, report = index.summary, f"{self.output_dir}/decontamination.json"
        (out[FOUND]
         | "TotalsFound" >> beam.ParDo(BundleTotals(lambda events: events))
         | "SumFound" >> beam.CombinePerKey(sum)
         | "GatherFound" >> beam.combiners.ToList()
         | "WriteReport" >> beam.Map(lambda totals: _write_report(summary, totals, report)))
        return StageResult(out.kept, out["dropped"], out["failed"])


def report_of(summary: dict, totals: list) -> dict:
    """decontamination.json: the index summary and what was found, per set and source."""
    sets = json.loads(json.dumps(summary["sets"]))
    for info in sets.values():
        info.update({"found_items": {}, "found_items_total": 0, "documents": {}, "dropped_documents": {},
                     "redacted_documents": {}, "redacted_spans": {}})
    found_ids: dict[str, set] = {name: set() for name in sets}
    for key, n in totals:
        name, source, kind = key[0], key[1], key[2]
        info = sets[name]
        if kind == "item":
            info["found_items"][source] = info["found_items"].get(source, 0) + 1
            found_ids[name].add(key[3])
        else:
            info[kind][source] = info[kind].get(source, 0) + n
    for name, info in sets.items():
        info["found_items_total"] = len(found_ids[name])
        info["found_item_ids"] = sorted(found_ids[name])[:1000]
        for k in ("found_items", "documents", "dropped_documents", "redacted_documents", "redacted_spans"):
            info[k] = dict(sorted(info[k].items()))
    return {"settings": summary["settings"], "index_ngrams": summary.get("index_ngrams"),
            "index_bytes": summary.get("index_bytes"),
            "template_ngrams_left_out": summary.get("template_ngrams_left_out", 0),
            "items_only_template": summary.get("items_only_template", []), "sets": sets}


def _write_report(summary: dict, totals: list, path: str) -> None:
    from .sinks import write_json

    write_json(report_of(summary, totals), path)


class DecontaminateStage(Stage):
    """Benchmark text (evaluation sets) found by n-gram overlap: dropped or cut out."""

    name, section = STAGE, "decontamination"
    header = "decontam"
    changes_text = True  # mode "remove" cuts the matched spans
    optional = True  # off unless sets are configured
    outputs = ("decontamination", "decontamination.json")

    def why_off(self, cfg):
        return None if is_configured(cfg["decontamination"]) else "no evaluation sets (decontamination.sets)"

    def check(self, cfg) -> list:
        if not cfg["decontamination"]["sets"]:
            return []
        try:  # every set read and indexed now: a bad file is an error before anything is written
            prepared_index(cfg["decontamination"], cfg["coarse"]["traditional_chinese"])
        except (ValueError, OSError) as exc:
            return [str(exc)]
        return []

    def runs(self, build: BuildContext) -> bool:
        return build.output_dir is not None and super().runs(build)  # its index is prepared in the output

    def transform(self, build: BuildContext) -> beam.PTransform:
        cfg = build.cfg
        return Decontaminate(cfg["decontamination"], build.output_dir, cfg["coarse"]["traditional_chinese"],
                             build.excerpt_chars)

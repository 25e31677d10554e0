"""The n-gram index of the evaluation items: built once on the launcher
(``prepared_index``), written beside the run, loaded once per worker process
(``loaded_index``) and looked up with a vectorised ``searchsorted``."""
from __future__ import annotations

import io
import json
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ...config import decontamination_sets
from .items import read_items
from .tokens import OVERLAP, WINDOW, ngram_hashes, normalise, tokenize

if TYPE_CHECKING:
    from ...schema import Decontamination

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
            return np.empty(0, dtype=np.uint64), empty, empty
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


def build_index(cfg: Decontamination, traditional: str = "convert") -> Index:
    """Read every set once and build the index (on the launcher); ``cfg``: the ``decontamination`` section."""
    ng = {"cjk": cfg.ngrams.cjk, "words": cfg.ngrams.words}
    sets = decontamination_sets(cfg)
    summary = {"settings": {"ngrams": cfg.ngrams.model_dump(), "min_matches": cfg.min_matches,
                            "max_ngram_items": cfg.max_ngram_items},
               "sets": {}}
    grams, item_set, item_ids, lengths = [], [], [], set()  # grams: per item, [(n, ordered hashes)] per variant
    for si, (name, spec) in enumerate(sets.items()):
        info = {"paths": spec.paths, "fields": spec.fields or "text, else question + options + answer",
                "action": spec.action, "items": 0, "indexed": 0, "too_short": [], "by_script": {}}
        for ident, text in read_items(name, spec):
            info["items"] += 1
            variants, script, n_tok = [], None, 0
            for variant in _item_variants(text, traditional):
                tok = tokenize(normalise(variant))
                if script is None:
                    n_tok = len(tok.values)
                    script = "cjk" if tok.char_tokens * 2 >= max(n_tok, 1) else "words"
                if len(tok.values) >= ng[script].min_item_tokens:
                    n = min(ng[script].n, len(tok.values))
                    variants.append((n, ngram_hashes(tok.values, n)))
                    lengths.add(n)
            if not variants or len(variants[0][1]) == 0 or n_tok < ng[script].min_item_tokens:
                info["too_short"].append({"id": ident, "tokens": n_tok, "script": script,
                                          "min_item_tokens": ng[script].min_item_tokens})
                continue
            grams.append(variants)
            item_ids.append(ident)
            item_set.append(si)
            info["indexed"] += 1
            info["by_script"][script] = info["by_script"].get(script, 0) + 1
        if info["items"] == 0:
            raise ValueError(f"decontamination.sets.{name}: the files {spec.paths} hold no items")
        summary["sets"][name] = info
    # question templates: an n-gram in more than max_ngram_items items says nothing about any one of them
    per_item = [np.unique(np.concatenate([h for _, h in v])) for v in grams]
    if per_item:
        uniq, counts = np.unique(np.concatenate(per_item), return_counts=True)
        common = uniq[counts > cfg.max_ngram_items]
    else:
        common = np.empty(0, dtype=np.uint64)
    all_h, all_i, need, total, only_template = [], [], [], [], []
    for idx, variants in enumerate(grams):
        kept = [_template_free(h, n, common) for n, h in variants]
        mine = np.unique(np.concatenate(kept))
        base = len(np.unique(kept[0]))
        if not len(mine) or not base:
            only_template.append(item_ids[idx])
        total.append(base)
        need.append(max(1, min(cfg.min_matches, base)))
        all_h.append(mine)
        all_i.append(np.full(len(mine), idx, dtype=np.int32))
    summary["template_ngrams_left_out"] = int(len(common))
    summary["items_only_template"] = only_template
    hashes = np.concatenate(all_h) if all_h else np.empty(0, dtype=np.uint64)
    items = np.concatenate(all_i) if all_i else np.empty(0, dtype=np.int32)
    order = np.lexsort((items, hashes))
    index = Index(hashes[order], items[order], np.asarray(need, dtype=np.int32), np.asarray(total, dtype=np.int32),
                  np.asarray(item_set, dtype=np.int16), sorted(lengths), item_ids,
                  [{"name": n, "action": s.action} for n, s in sets.items()], summary)
    summary["index_bytes"] = index.nbytes()
    summary["index_ngrams"] = int(len(hashes))
    limit = cfg.max_index_mb * 1e6
    if index.nbytes() > limit:
        raise ValueError(f"decontamination: the index is {index.nbytes() / 1e6:.0f} MB, over "
                         f"decontamination.max_index_mb = {cfg.max_index_mb:g}: every worker process holds it in "
                         "memory; raise the limit if the workers have room, or split the sets over runs")
    return index


_BUILT: dict = {}
_LOADED: dict = {}
_LOAD_LOCK = threading.Lock()


def _fingerprint(cfg: Decontamination, traditional: str) -> str:
    return json.dumps([cfg.model_dump(mode="json"), traditional], sort_keys=True)


def prepared_index(cfg: Decontamination, traditional: str) -> Index:
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


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

# The package face: what the pipeline (build.py, run.py), the tests and bench/ use.
from .index import Index, build_index, loaded_index, prepared_index
from .items import item_text, read_items, render_value
from .tokens import OVERLAP, WINDOW, char_classes, ngram_hashes, normalise, normalise_aligned, tokenize
from .transform import FOUND, REASON, STAGE, Decontaminate, DecontaminateDoFn, DecontaminateStage, is_configured, report_of

__all__ = ["FOUND", "OVERLAP", "REASON", "STAGE", "WINDOW", "Decontaminate", "DecontaminateDoFn", "DecontaminateStage", "Index",
           "build_index", "char_classes", "is_configured", "item_text", "loaded_index", "ngram_hashes", "normalise",
           "normalise_aligned", "prepared_index", "read_items", "render_value", "report_of", "tokenize"]

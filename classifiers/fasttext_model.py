"""fastText quality/ad classifier: the cheap first stage of the cascade
(ChineseWebText distils its BERT scorer into fastText the same way).

Chinese has no word spaces, so text is fed to fastText as space-separated
characters (Latin words kept whole) with word n-grams up to 3: character
bigrams and trigrams carry most of the signal.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

_TOKEN = re.compile(r"[a-z0-9]+|[^\sa-z0-9]", re.IGNORECASE)
MODEL_FILE = "model.bin"
LABELS_FILE = "labels.json"


def to_fasttext_tokens(text: str, max_chars: int = 4000) -> str:
    """One line of space-separated tokens: CJK and punctuation per character,
    Latin words and numbers whole, lower-cased."""
    return " ".join(_TOKEN.findall(text[:max_chars].lower()))


def train(texts: list[str], labels: list[str], output_dir: str, label_names: list[str], epoch: int = 25,
          lr: float = 0.5, word_ngrams: int = 3, dim: int = 64, minn: int = 0, maxn: int = 0,
          thread: int = 2, seed: int = 0, bucket: int | None = None) -> str:
    """Trains and saves ``model.bin`` and ``labels.json`` under ``output_dir``.

    ``bucket`` (hash buckets of the word n-grams) defaults to what the data can
    fill: fastText's own default, 2 million buckets of ``dim`` floats, makes
    every model ~500 MB however few rows it saw."""
    import fasttext

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as fh:
        for t, l in zip(texts, labels):
            fh.write(f"__label__{l} {to_fasttext_tokens(t)}\n")
        train_path = fh.name
    try:
        model = fasttext.train_supervised(input=train_path, epoch=epoch, lr=lr, wordNgrams=word_ngrams, dim=dim,
                                          minn=minn, maxn=maxn, thread=thread, seed=seed, loss="softmax",
                                          bucket=bucket or default_buckets(texts), verbose=0)
    finally:
        os.unlink(train_path)
    model.save_model(str(out / MODEL_FILE))
    (out / LABELS_FILE).write_text(json.dumps({"kind": "fasttext", "labels": label_names}, ensure_ascii=False))
    from .integrity import record

    record(out / LABELS_FILE, [out / MODEL_FILE])  # size and checksum, checked at every load
    return str(out / MODEL_FILE)


BUCKETS_PER_ROW = 5


def default_buckets(texts: list[str]) -> int:
    """Five hash buckets per training row, between 20,000 and fastText's own
    2,000,000.  Measured on the AdDetector set (10,000 rows, bench/eval_classifiers.py,
    docs/CLASSIFIER.md, ``bench/fasttext_size.py``): 50,000 buckets give a 15 MB
    model whose macro-F1 is 0.002 under the 514 MB model of 2,000,000 buckets."""
    return int(min(2_000_000, max(20_000, BUCKETS_PER_ROW * len(texts))))


class FastTextClassifier:
    """Loads a model saved by ``train`` (a directory) and returns every class
    probability for each text.

    The file is checked against the size and checksum training recorded before
    it is parsed (``integrity``); a model without that record must load
    completely (checked when ``verify_unrecorded``: the launcher's preflight and
    ``mdfs eval-classifier`` do, workers rely on it) and is marked unverified."""

    def __init__(self, model_dir: str, verify_unrecorded: bool = True):
        import fasttext

        from .integrity import ModelError, check_recorded, fasttext_loads_completely, read_meta

        path = Path(model_dir)
        model_path = path / MODEL_FILE if path.is_dir() else path
        if not model_path.is_file():
            raise FileNotFoundError(f"fastText model not found: {model_path}")
        meta_path = model_path.parent / LABELS_FILE
        meta = read_meta(meta_path) if meta_path.is_file() else {}
        self.verified = check_recorded(meta, meta_path, [model_path])
        fasttext.FastText.eprint = lambda *a, **k: None
        try:
            self.model = fasttext.load_model(str(model_path))
        except ValueError as exc:  # fastText's own check of its magic number and version
            raise ModelError(f"{model_path}: not a fastText model ({exc})") from None
        if not self.verified and verify_unrecorded:
            fasttext_loads_completely(self.model, model_path)
        found = [l.removeprefix("__label__") for l in self.model.get_labels()]
        labels = meta.get("labels", sorted(found))
        if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
            raise ModelError(f"{meta_path}: 'labels' is not a list of label names")
        self.labels = labels

    def predict_proba(self, texts: list[str]) -> list[dict[str, float]]:
        if not texts:
            return []
        from .langid import fasttext_predict

        out = []
        for t in texts:
            d = {label: p for p, label in fasttext_predict(self.model, to_fasttext_tokens(t) or ".", len(self.labels))}
            out.append({name: d.get(name, 0.0) for name in self.labels})
        return out

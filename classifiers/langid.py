"""fastText language identification (lid.176).

The model loads from a local path (the bundled ``models/lid.176.ftz`` by
default), once per worker in a DoFn's ``setup()``.  fastText's ``predict``
cannot take newlines and, with numpy 2, must be given a list of strings.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent / "models"
DEFAULT_LID_MODEL = MODELS_DIR / "lid.176.ftz"
_WS = re.compile(r"\s+")


class FastTextLangID:
    def __init__(self, model_path: str | os.PathLike = DEFAULT_LID_MODEL, max_chars: int = 2000):
        import fasttext

        path = str(model_path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"fastText language-ID model not found: {path}")
        fasttext.FastText.eprint = lambda *a, **k: None  # silence the load_model deprecation notice
        self.model = fasttext.load_model(path)
        self.max_chars = int(max_chars)

    def predict(self, text: str) -> tuple[str, float]:
        """Most likely language code ('zh', 'en', ...) and its probability.

        Only the first ``max_chars`` characters are read: language is settled
        long before that, and the cost stays flat for giant pages."""
        sample = _WS.sub(" ", text[: self.max_chars]).strip()
        if not sample:
            return "und", 0.0
        (prob, label), = fasttext_predict(self.model, sample, 1)
        return label, prob

    def predict_top(self, text: str, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` most likely (language, probability), best first; the first is
        ``predict``'s answer (the same sample is read)."""
        sample = _WS.sub(" ", text[: self.max_chars]).strip()
        if not sample:
            return [("und", 0.0)]
        return [(label, prob) for prob, label in fasttext_predict(self.model, sample, k)]


def fasttext_predict(model, text: str, k: int) -> list[tuple[float, str]]:
    """[(probability, label)] for one line of text, best first.

    Calls the C++ ``predict`` directly: the Python wrapper's list path
    (``multilinePredict``) returns wrong probabilities with fasttext-wheel 0.9.2
    and numpy 2, and its single-string path raises ("Unable to avoid copy")."""
    text = text.replace("\n", " ")
    return [(float(p), l.removeprefix("__label__")) for p, l in model.f.predict(text + "\n", k, 0.0, "strict")]


TRAINING_LANGUAGE_SHARE = 0.05  # a language with at least this share of the training rows


def training_languages(texts: list[str], model_path: str | os.PathLike = DEFAULT_LID_MODEL) -> list[str]:
    """The languages a classifier was trained on: those of at least 5 % of the
    rows by language ID.  Recorded with the model, so the fine stage judges only
    documents in languages the model can read."""
    lid = FastTextLangID(model_path, 1000)
    counts: dict[str, int] = {}
    for t in texts:
        lang = lid.predict(t)[0]
        counts[lang] = counts.get(lang, 0) + 1
    n = max(len(texts), 1)
    return sorted(lang for lang, c in counts.items() if c / n >= TRAINING_LANGUAGE_SHARE and lang != "und")

"""Language codes in the configuration, checked against the labels of the
language-ID model that decides them (coarse.langid.model): a code it never
predicts would drop every document of a source at read/language_prefilter or
coarse/language, so it is refused before the run, with the closest label."""
from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .schema import MdfsConfig

# Country codes are the usual slip for language codes (pii.phone_regions takes
# country codes: cn); ISO 3166 country -> the language lid.176 labels it with.
COUNTRY_SLIPS = {"cn": "zh", "tw": "zh", "hk": "zh", "jp": "ja", "kr": "ko", "gr": "el", "cz": "cs", "dk": "da",
                 "se": "sv", "ua": "uk", "vn": "vi", "il": "he", "ir": "fa", "us": "en", "gb": "en",
                 "br": "pt", "mx": "es", "at": "de", "ch": "de"}


def model_labels(model_path: str) -> set[str]:
    """The language codes a fastText language-ID model predicts."""
    import fasttext

    fasttext.FastText.eprint = lambda *a, **k: None  # the load_model deprecation notice
    return {label.removeprefix("__label__") for label in fasttext.load_model(str(model_path)).get_labels()}


def suggestion(code: str, labels: set[str]) -> str | None:
    """The label the user most likely meant: a country code's language, a
    language's name or ISO 639-2/3 code (pycountry), else the closest spelling."""
    low = code.strip().lower()
    if COUNTRY_SLIPS.get(low) in labels and low not in labels:
        return COUNTRY_SLIPS[low]
    import pycountry

    try:
        lang = pycountry.languages.lookup(low)
    except LookupError:
        lang = None
    for candidate in (getattr(lang, "alpha_2", None), getattr(lang, "alpha_3", None)):
        if candidate in labels:
            return candidate
    names = {}  # a misspelt language name ("englsh"): the closest name of a label
    for label in labels:
        known = pycountry.languages.get(alpha_2=label) if len(label) == 2 else pycountry.languages.get(alpha_3=label)
        if known is not None:
            names[known.name.lower()] = label
    close = difflib.get_close_matches(low, sorted(names), n=1, cutoff=0.75)
    if close:
        return names[close[0]]
    close = difflib.get_close_matches(low, sorted(labels), n=1, cutoff=0.6)
    return close[0] if close else None


def _named_codes(cfg: MdfsConfig) -> list[tuple[str, str]]:
    """(key, code) of every language code the configuration names."""
    out = []
    for name, src in cfg.sources.items():
        out += [(f"sources.{name}.languages", c) for c in src.languages]
    out += [("fine.languages", c) for c in cfg.fine.languages or []]
    out += [("near_dedup.shingles", c) for c in cfg.near_dedup.shingles if c != "default"]
    return out


def check_codes(cfg: MdfsConfig) -> list[str]:
    """One problem per code the language-ID model does not know."""
    named = _named_codes(cfg)
    if not named:
        return []
    model = cfg.coarse.langid.model
    try:
        labels = model_labels(model)
    except Exception as exc:  # noqa: BLE001 - missing file, not a fastText model
        return [f"coarse.langid.model: cannot load {model}: {exc}"]
    problems = []
    for key, code in named:
        if code not in labels:
            hint = suggestion(code, labels)
            problems.append(f"{key}: {code!r} is unknown to the language-ID model"
                            + (f" (did you mean {hint}?)" if hint else f" ({model})"))
    return list(dict.fromkeys(problems))

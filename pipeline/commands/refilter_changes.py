"""Which configuration changes ``mdfs refilter`` accepts: rule and classifier
thresholds, new classifier models, the settings of the stages it runs again,
and settings that change no decision.  Anything else changes what was
measured or which documents reached the rules, and needs ``mdfs run``."""
from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING

from ..stages.coarse import rule_sets

if TYPE_CHECKING:
    from ..schema import MdfsConfig

# Keys a refilter may change (fnmatch patterns over dotted keys): rule thresholds, the
# classifier thresholds, and settings that do not change any decision.
THRESHOLD_KEYS = (
    "coarse.zh.min_chars", "coarse.zh.min_mean_line_chars", "coarse.zh.min_han_share", "coarse.zh.max_garbled_share",
    "coarse.zh.max_symbol_share", "coarse.zh.max_punct_share", "coarse.zh.min_sentence_ends",
    "coarse.zh.max_sensitive_per_line", "coarse.zh.max_repetition_share",
    "coarse.en.min_chars", "coarse.en.max_sensitive_per_line",
    "coarse.en.gopher_quality.*", "coarse.en.gopher_repetition.*",
    "coarse.en.c4.*", "coarse.en.fineweb.enabled", "coarse.en.fineweb.line_punct_thr",
    "coarse.en.fineweb.short_line_thr", "coarse.en.fineweb.char_duplicates_ratio", "coarse.en.fineweb.new_line_ratio",
    "coarse.other.min_chars",
    "sources.*.min_language_score",  # stricter only (checked below)
    "fine.thresholds", "fine.thresholds.*", "fine.default_threshold",
)
# stages that run again over the candidates: their settings may change freely
RECOMPUTED_KEYS = ("decontamination", "decontamination.*", "dedup_against")
# a new classifier (one trained on reviewers' labels: docs/REVIEW.md): the stored scores are the
# old models', so none is used and every document reaching the fine stage is scored now
MODEL_KEYS = ("fine.fasttext_model", "fine.bert_model")
NEUTRAL_KEYS = (
    "output.*", "run.*", "review", "review.*", "read.progress_every_s", "stats.*", "mix.*",
    "fine.bert.device", "fine.bert.batch_size", "fine.bert.docs_per_batch", "fine.bert.accelerator",
)



def _diff(old, new, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ (maps compared key by key)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in list(old) + [k for k in new if k not in old]:
            out += _diff(old.get(k), new.get(k), f"{prefix}{k}.")
        return out
    return [] if old == new else [prefix.rstrip(".")]


def _allowed(key: str) -> bool:
    return any(fnmatch.fnmatchcase(key, p) for p in THRESHOLD_KEYS + NEUTRAL_KEYS + RECOMPUTED_KEYS + MODEL_KEYS)


def check_changes(old_given: dict, old: MdfsConfig, new: MdfsConfig) -> list[str]:
    """What the new configuration may not change, one line per key (empty: all
    allowed).  ``old_given``: the run's config.yaml as it was written; ``old``: it checked."""
    problems, changed = [], changed_keys(old_given, new)
    for key in changed:
        if not _allowed(key):
            problems.append(f"{key}: only rule and classifier thresholds may change in a refilter "
                            f"(this changes what was measured or which documents reached the rules; "
                            f"run `mdfs run` for it)")
    for name, src in new.sources.items():
        before = old.sources[name].min_language_score if name in old.sources else None
        if before is not None and src.min_language_score < before:
            problems.append(f"sources.{name}.min_language_score: {src.min_language_score:g} is looser than the "
                            f"run's {before:g}; documents under {before:g} were dropped before the candidate store")
    if not problems:
        old_rules, new_rules = rule_sets(old.coarse), rule_sets(new.coarse)
        for lang, rules in new_rules.items():
            measured = {r.signal for r in old_rules[lang]}
            for r in rules:
                if r.signal not in measured:
                    problems.append(f"coarse.{lang}: rule {r.reason} needs signal {r.signal}, which the run did not "
                                    "measure (the rule was off); a refilter cannot turn on a rule that was off")
    return problems


def changed_keys(old_given: dict, new: MdfsConfig) -> list[str]:
    """Dotted keys the new configuration changes, against the run's config.yaml as written."""
    return _diff(old_given, new.as_dict())

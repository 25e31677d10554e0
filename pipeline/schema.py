"""The typed configuration schema: every key mdfs reads, its type, range or
choices, its default and the reason for it (the paper each threshold comes
from).  The sections live by area in ``schema_input.py`` (sources, pii, read,
extract), ``schema_coarse.py`` and ``schema_stages.py`` (decontamination,
dedup, fine, report, output); this module assembles them.  ``defaults.yaml``
is generated from these models (``python -m mdfs.pipeline.defaults_file``,
the descriptions as its comments) and a test checks the committed file is
that text, so adding a key touches one file.  Every configuration is
validated against the schema before anything runs, so a misspelled key, a
wrong type or an out-of-range value is one clear line, never a silently
ignored setting.

Rules:
* Unknown keys are errors at every depth, with the closest valid key named.
* Free-form maps (source names, ``fine.drop_labels``, ``fine.thresholds``,
  ``mix.weights``, ``near_dedup.shingles``, ``coarse.lines.boilerplate_patterns``,
  the Gopher n-gram tables) accept any key and type their values.
* Maps listed in ``REPLACED_MAPS`` are *replaced* by a config file or ``--set``,
  not merged into the defaults: a file that says ``drop_labels: {ad: advertisement}``
  means exactly that, without the default ``low`` label.
"""
from __future__ import annotations

from typing import Annotated

from pydantic import Field, PrivateAttr

from .formats import FORMATS  # the source formats' choices (sources.*.format)
from .schema_base import NonNeg, NonNegInt, Positive, PositiveInt, Share, Strict, section
from .schema_coarse import (C4, Coarse, EnRules, FineWeb, GopherQuality, GopherRepetition, LangId, Lines,
                            Normalise, OtherRules, UrlLists, ZhRules)
from .schema_input import (INDEX_KEYS, CustomPii, Extract, Fields, Pii, PiiOverride, PiiTypes, PiiTypesOverride,
                           Read, Source, SourceDefaults)
from .schema_stages import (Bert, Cascade, CustomStage, Decontamination, DecontaminationSet, ExactDedup, Fine,
                            KeepCriterion, Mix, NearDedup, NgramSize, NgramSizes, Output, Review, Run, Shingle,
                            Stats)

__all__ = ["C4", "FORMATS", "INDEX_KEYS", "REPLACED_MAPS", "Bert", "Cascade", "Coarse", "CustomPii", "CustomStage",
           "Decontamination", "DecontaminationSet", "EnRules", "ExactDedup", "Extract", "Fields", "Fine",
           "FineWeb", "GopherQuality", "GopherRepetition", "KeepCriterion", "LangId", "Lines", "MdfsConfig", "Mix",
           "NearDedup", "NgramSize", "NgramSizes", "NonNeg", "NonNegInt", "Normalise", "OtherRules", "Output",
           "Pii", "PiiOverride", "PiiTypes", "PiiTypesOverride", "Positive", "PositiveInt", "Read", "Review",
           "Run", "Share", "Shingle", "Source", "SourceDefaults", "Stats", "Strict", "UrlLists", "ZhRules"]

# dotted paths ("*" = any one key) whose value a user config replaces instead of merging
REPLACED_MAPS = ("fine.drop_labels", "fine.thresholds", "near_dedup.shingles", "sources.*.fields",
                 "source_defaults.fields", "mix.weights", "coarse.lines.boilerplate_patterns",
                 "coarse.en.gopher_repetition.top_ngram_char_frac", "coarse.en.gopher_repetition.dup_ngram_char_frac")

HEADER = """mdfs configuration: built-in defaults.

Every value here can be overridden by a YAML file given with --config (deep
merged) and then from the command line with --set KEY.PATH=VALUE (the value
is parsed as YAML), e.g.
  mdfs run --output out --set extract.timeout_s=5
Sources can also be given with --source NAME=GLOB."""

_SOURCES = (
    "Input sources.  Each has one or more file globs (any Beam filesystem: local, gs://, s3://, hdfs://) and a "
    "format (the list: pipeline/formats.py): auto, from the file name (.warc.gz .warc .arc.gz .arc: warc; "
    ".warc.wet.gz .wet.gz .wet: wet; .jsonl.gz .json.gz .jsonl .ndjson: jsonl; .parquet: parquet), or one set "
    "here: warc, wet, jsonl, parquet, cc_index.  \"fields\" maps the JSONL/Parquet columns (a missing id is "
    "derived from source + file + row).  \"{samples}\" is the bundled sample data.  format cc_index reads Common "
    "Crawl's columnar URL index instead: \"paths\" are index Parquet files, rows are selected by the source's "
    "\"languages\" (mapped to the index's ISO 639-3 content_languages; a row without languages is selected), "
    "\"mime\" (content_mime_detected, default [text/html, application/xhtml+xml]), \"status\" (fetch_status, "
    "default [200]) and \"hosts\" (fnmatch patterns on the URL's host, default: every host), and each selected "
    "record is fetched by byte range from warc_root + \"/\" + warc_filename (any Beam filesystem: a local mirror, "
    "s3://, gs://; Beam has no HTTPS filesystem).  Set format: cc_index explicitly.  These sample sources apply "
    "only when no source is named by --config, --source or --set (a --set of sources, sources.NAME or "
    "sources.NAME.paths names a source).")

_DEDUP_AGAINST = (
    "Earlier runs (their output directories) whose kept documents this run's exact and near dedup also match "
    "against: a new document that duplicates an earlier kept one is dropped (detail: the earlier run and "
    "document id); earlier outputs are never rewritten.  --dedup-against RUN_DIR adds one.  Their MinHash "
    "parameters, normalisation and every setting that changes the text dedup sees must equal this run's "
    "(checked; docs/NEAR_DEDUP.md).")

_CUSTOM_STAGES = (
    "Your own document stages, without a fork of mdfs (as datatrove's pipeline steps): each is a subclass of "
    "mdfs.pipeline.stage.Stage, named as module:Class, importable on the launcher and on every worker, and "
    "placed after the declared stage it names (mdfs config --stages lists them).  Its settings (a free-form "
    "map) reach it as self.settings.  Example:\n"
    "  custom_stages:\n"
    "    - {stage: \"mystages:Shout\", after: pii, settings: {min_chars: 3}}")


def _samples(*pairs: tuple[str, str]) -> dict:
    return {name: {"paths": [f"{{samples}}/{glob}"]} for name, glob in pairs}


class MdfsConfig(Strict):
    """mdfs configuration (the defaults: pipeline/defaults.yaml, generated from this schema)."""

    sources: Annotated[dict[str, Source], Field(min_length=1)] = Field(default_factory=lambda: _samples(
        ("common_crawl", "warc/*.warc.gz"), ("web_zh", "web_zh/*.warc.gz"), ("common_crawl_wet", "wet/*.wet.gz"),
        ("news", "news/*.jsonl.gz"), ("forum", "forum/*.parquet")), description=_SOURCES)
    source_defaults: SourceDefaults = section(SourceDefaults)
    read: Read = section(Read)
    extract: Extract = section(Extract)
    coarse: Coarse = section(Coarse)
    pii: Pii = section(Pii)
    decontamination: Decontamination = section(Decontamination)
    exact_dedup: ExactDedup = section(ExactDedup)
    near_dedup: NearDedup = section(NearDedup)
    fine: Fine = section(Fine)
    stats: Stats = section(Stats)
    mix: Mix = section(Mix)
    run: Run = section(Run)
    review: Review = section(Review)
    output: Output = section(Output)
    dedup_against: list[str] = Field(default_factory=list, description=_DEDUP_AGAINST)
    custom_stages: list[CustomStage] = Field(default_factory=list, description=_CUSTOM_STAGES)

    # the mapping this model was validated from: as_dict() writes each value as it was given
    _given: dict = PrivateAttr(default_factory=dict)

    def as_dict(self) -> dict:
        """The configuration as a plain mapping, in the key order and the form
        its values were given (``20`` stays ``20`` where the model holds
        ``20.0``): what ``OUTPUT/config.yaml`` records and a later run reads back.
        Values set after validation (``run`` makes ``dedup_against`` absolute)
        are written as they are now."""
        return _like(self.model_dump(mode="python", exclude_unset=True), self._given)


def _like(value, given):
    """``value`` (a dumped model) with the key order of ``given`` and its values
    where they mean the same (an int for an equal float, a YAML string for the
    number it reads as, a path for a list of that one path)."""
    if isinstance(value, dict):
        given = given if isinstance(given, dict) else {}
        keys = [k for k in given if k in value] + [k for k in value if k not in given]
        return {k: _like(value[k], given.get(k)) for k in keys}
    if isinstance(value, list):
        if isinstance(given, str) and value == [given]:  # a single path given as a string (``_as_list``)
            return given
        given = given if isinstance(given, list) and len(given) == len(value) else [None] * len(value)
        return [_like(v, g) for v, g in zip(value, given)]
    return given if _same_scalar(given, value) else value


def _same_scalar(given, value) -> bool:
    if given is None or isinstance(given, (dict, list)) or type(given) is type(value):
        return False
    if isinstance(given, str):
        try:
            return not isinstance(value, str) and float(given) == value
        except ValueError:
            return False
    return given == value

"""The typed configuration schema: every key mdfs reads, its type, range or
choices.  ``defaults.yaml`` holds every default with its documentation (and
the paper each threshold comes from); this module holds the types.  A test
checks that the two agree key for key, and every configuration is validated
against the schema before anything runs, so a misspelled key, a wrong type or
an out-of-range value is one clear line, never a silently ignored setting.

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

from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from .formats import FORMATS

# dotted paths ("*" = any one key) whose value a user config replaces instead of merging
REPLACED_MAPS = ("fine.drop_labels", "fine.thresholds", "near_dedup.shingles", "sources.*.fields",
                 "source_defaults.fields", "mix.weights", "coarse.lines.boilerplate_patterns",
                 "coarse.en.gopher_repetition.top_ngram_char_frac", "coarse.en.gopher_repetition.dup_ngram_char_frac")

Share = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegInt = Annotated[int, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]
INDEX_KEYS = ("warc_root", "mime", "status", "hosts")  # source keys of format cc_index only


class Strict(BaseModel):
    # not strict: PyYAML reads `1e-3` (a --set value, or a file's) as a string, which lax mode takes as a float
    model_config = ConfigDict(extra="forbid", strict=False, validate_assignment=True)


class Fields(Strict):
    """Column names; a field left out of a user's map (or null) is not read."""

    id: Optional[str] = None
    text: str
    url: Optional[str] = None
    date: Optional[str] = None


def _as_list(v):
    return [v] if isinstance(v, str) else v


class SourceDefaults(Strict):
    format: Literal[FORMATS]
    fields: Fields
    priority: int
    languages: list[str]
    min_language_score: Share


class PiiTypes(Strict):
    email: bool
    ip: bool
    id_number: bool
    phone: bool
    bank_card: bool
    account: bool


class PiiTypesOverride(Strict):
    email: Optional[bool] = None
    ip: Optional[bool] = None
    id_number: Optional[bool] = None
    phone: Optional[bool] = None
    bank_card: Optional[bool] = None
    account: Optional[bool] = None


class PiiOverride(Strict):
    enabled: Optional[bool] = None
    types: Optional[PiiTypesOverride] = None


class CustomPii(Strict):
    type: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    pattern: str
    placeholder: Optional[str] = None
    validator: Optional[Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")]] = None

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v):
        import re

        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return v


class Pii(Strict):
    enabled: bool
    types: PiiTypes
    phone_regions: list[Literal["cn", "hk", "tw"]]
    custom: list[CustomPii]

    @model_validator(mode="after")
    def _custom_names(self):
        taken = set(PiiTypes.model_fields)
        for c in self.custom:
            if c.type in taken:
                raise ValueError(f"custom type {c.type!r} is already a type (or listed twice)")
            taken.add(c.type)
        return self


class Source(SourceDefaults):
    paths: Annotated[list[str], Field(min_length=1)]
    name: Optional[str] = None  # filled in by the loader
    # format cc_index only (see pipeline/io/readers/cc_index.py)
    warc_root: Optional[str] = None
    mime: Optional[Annotated[list[str], Field(min_length=1)]] = None
    status: Optional[Annotated[list[Annotated[int, Field(ge=100, le=599)]], Field(min_length=1)]] = None
    hosts: Optional[list[str]] = None
    pii: Optional[PiiOverride] = None  # overrides of the pii section for this source

    _paths_list = field_validator("paths", mode="before")(_as_list)

    @model_validator(mode="after")
    def _index_keys(self):
        given = [k for k in INDEX_KEYS if getattr(self, k) is not None]
        if self.format != "cc_index" and given:
            raise ValueError(f"{', '.join(given)}: only for format cc_index (this source is {self.format})")
        if self.format == "cc_index" and not self.warc_root:
            raise ValueError("format cc_index needs warc_root (the prefix the index's warc_filename is joined to)")
        return self


class Read(Strict):
    max_payload_bytes: PositiveInt
    max_decompressed_bytes: PositiveInt
    max_header_bytes: Annotated[int, Field(ge=1024)]
    max_invalid_utf8_share: Share
    html_content_types: Annotated[list[str], Field(min_length=1)]
    accept_status: list[Annotated[int, Field(ge=100, le=599)]]
    progress_every_s: Positive
    split_bytes: Annotated[int, Field(ge=65536)]
    language_gate: Literal["off", "metadata", "metadata+fasttext"]
    language_gate_min_share: Share
    language_gate_min_confidence: Share
    language_gate_max_bytes: Annotated[int, Field(ge=1024)]


class Extract(Strict):
    engine: Literal["trafilatura", "resiliparse"]
    isolation: Literal["subprocess", "inprocess"]
    timeout_s: Positive
    memory_limit_mb: NonNegInt
    include_comments: bool
    include_tables: bool
    favor: Literal["balanced", "precision", "recall"]
    fast: bool
    deduplicate: bool
    fallback_min_share: Share
    fallback_min_tokens: NonNegInt


class LangId(Strict):
    model: str
    max_chars: PositiveInt


class Normalise(Strict):
    fix_mojibake: bool


class UrlLists(Strict):
    blocklists: list[str]
    allowlists: list[str]


class Lines(Strict):
    boilerplate_patterns: dict[str, list[str]]
    max_boilerplate_line_chars: PositiveInt
    min_content_share: Share
    remove_navigation: bool
    c4_terminal_punct: bool
    c4_min_words_per_line: NonNegInt


class ZhRules(Strict):
    min_chars: NonNegInt
    min_mean_line_chars: Optional[Annotated[float, Field(ge=0)]]
    min_han_share: Optional[Share]
    max_garbled_share: Optional[Share]
    max_symbol_share: Optional[Share]
    max_punct_share: Share
    min_sentence_ends: Optional[NonNegInt]
    sensitive_lexicons: list[str]
    sensitive_min_term_chars: PositiveInt
    max_sensitive_per_line: Annotated[float, Field(ge=0)]
    repetition_ngram: Optional[Annotated[int, Field(ge=2)]]
    max_repetition_share: Share


class GopherQuality(Strict):
    enabled: bool
    min_words: NonNegInt
    max_words: PositiveInt
    min_mean_word_length: Annotated[float, Field(ge=0)]
    max_mean_word_length: Positive
    max_symbol_word_ratio: Share
    max_bullet_lines_ratio: Share
    max_ellipsis_lines_ratio: Share
    min_alpha_words_ratio: Share
    min_stop_words: NonNegInt


class GopherRepetition(Strict):
    enabled: bool
    dup_line_frac: Share
    dup_para_frac: Share
    dup_line_char_frac: Share
    dup_para_char_frac: Share
    top_ngram_char_frac: dict[Annotated[int, Field(ge=1)], Share]
    dup_ngram_char_frac: dict[Annotated[int, Field(ge=1)], Share]


class C4(Strict):
    enabled: bool
    lorem_ipsum: bool
    curly_bracket: bool
    min_sentences: NonNegInt


class FineWeb(Strict):
    enabled: bool
    line_punct_thr: Share
    short_line_length: PositiveInt
    short_line_thr: Share
    char_duplicates_ratio: Share
    new_line_ratio: Annotated[float, Field(ge=0)]


class EnRules(Strict):
    min_chars: NonNegInt
    gopher_quality: GopherQuality
    gopher_repetition: GopherRepetition
    c4: C4
    fineweb: FineWeb
    sensitive_lexicons: list[str]
    max_sensitive_per_line: Annotated[float, Field(ge=0)]


class OtherRules(Strict):
    min_chars: NonNegInt


class Coarse(Strict):
    enabled: bool
    langid: LangId
    normalise: Normalise
    traditional_chinese: Literal["convert", "keep", "drop"]
    traditional_min_share: Share
    url: UrlLists
    lines: Lines
    zh: ZhRules
    en: EnRules
    other: OtherRules


KeepCriterion = Literal["source_priority", "earliest_date", "longest"]


class DecontaminationSet(Strict):
    paths: Annotated[list[str], Field(min_length=1)]
    fields: Optional[Annotated[list[str], Field(min_length=1)]] = None
    id_field: Optional[str] = None
    action: Optional[Literal["drop", "redact"]] = None

    _paths_list = field_validator("paths", mode="before")(_as_list)


class NgramSize(Strict):
    n: Annotated[int, Field(ge=3, le=200)]
    min_item_tokens: PositiveInt


class NgramSizes(Strict):
    cjk: NgramSize
    words: NgramSize


class Decontamination(Strict):
    sets: dict[str, Union[str, Annotated[list[str], Field(min_length=1)], DecontaminationSet]]
    action: Literal["drop", "redact"]
    ngrams: NgramSizes
    min_matches: PositiveInt
    max_ngram_items: PositiveInt
    max_index_mb: Positive


class ExactDedup(Strict):
    enabled: bool
    keep: list[KeepCriterion]


class Shingle(Strict):
    unit: Literal["char", "word"]
    n: PositiveInt


class NearDedup(Strict):
    enabled: bool
    threshold: Annotated[float, Field(gt=0.0, le=1.0)]
    num_perm: Annotated[int, Field(ge=2, le=4096)]
    seed: int
    bands: Optional[PositiveInt]
    rows: Optional[PositiveInt]
    false_positive_weight: Share
    false_negative_weight: Share
    verify: bool
    max_rounds: PositiveInt
    shingles: dict[str, Shingle]
    keep: list[KeepCriterion]
    decisions: bool

    @model_validator(mode="after")
    def _check(self):
        if "default" not in self.shingles:
            raise ValueError("shingles needs a 'default' entry (used for languages without their own)")
        if (self.bands is None) != (self.rows is None):
            raise ValueError("set both bands and rows, or neither (datasketch's optimiser picks them)")
        if self.bands and self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands x rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")
        return self


class Cascade(Strict):
    sure_keep: Share
    sure_drop: Share


class Bert(Strict):
    device: Literal["auto", "cuda", "cpu"]
    dtype: Literal["auto", "bf16", "fp16", "fp32"]
    max_length: Annotated[int, Field(ge=8, le=8192)]
    max_segments: PositiveInt
    aggregate: Literal["mean", "max", "first"]
    batch_size: PositiveInt
    docs_per_batch: PositiveInt
    accelerator: Optional[str]


class Fine(Strict):
    bert_model: Optional[str]
    fasttext_model: Optional[str]
    allow_pickle: bool
    languages: Optional[list[str]]
    drop_labels: dict[str, str]
    thresholds: dict[str, Share]
    default_threshold: Share
    cascade: Cascade
    bert: Bert

    @model_validator(mode="after")
    def _thresholds_name_drop_labels(self):
        stray = sorted(set(self.thresholds) - set(self.drop_labels))
        if stray:
            raise ValueError(f"thresholds for {stray} but drop_labels has only {sorted(self.drop_labels)}: "
                             "a threshold applies to a drop label")
        return self


class Stats(Strict):
    tokenizer: Optional[str]


class Mix(Strict):
    weights: dict[str, Annotated[float, Field(ge=0)]]
    budget_tokens: Optional[Positive]
    model_params: Optional[Positive]
    tokens_per_param: Positive
    max_epochs: Positive

    @model_validator(mode="after")
    def _one_budget(self):
        if self.budget_tokens is not None and self.model_params is not None:
            raise ValueError("set budget_tokens or model_params, not both (each sets the budget)")
        return self


class Output(Strict):
    compression: Literal["zstd", "snappy", "gzip", "brotli", "lz4", "none"]
    excerpt_chars: NonNegInt
    kept_shards: NonNegInt
    candidates: bool
    dedup_state: bool


class Run(Strict):
    max_failed_share: Share


class Review(Strict):
    min_precision: Share = 0.9  # defaults.yaml says why; the default also serves runs made before the key



class CustomStage(Strict):
    """A user's own stage (``stage.Stage`` subclass), placed after a declared one."""

    stage: Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")]  # module:Class
    after: str
    settings: dict = {}


class MdfsConfig(Strict):
    sources: Annotated[dict[str, Source], Field(min_length=1)]
    source_defaults: SourceDefaults
    read: Read
    extract: Extract
    coarse: Coarse
    pii: Pii
    decontamination: Decontamination
    exact_dedup: ExactDedup
    near_dedup: NearDedup
    fine: Fine
    stats: Stats
    mix: Mix
    output: Output
    run: Run
    review: Review = Field(default_factory=Review)
    dedup_against: list[str]
    custom_stages: list[CustomStage]

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

"""Configuration sections of the input side: sources, personal information,
reading and extraction (re-exported by ``schema.py``; each default and the
reason for it is here, ``defaults.yaml`` is generated from it)."""
from __future__ import annotations

import re
from typing import Annotated, Literal, Optional

from pydantic import Field, field_validator, model_validator

from .formats import FORMATS
from .schema_base import NonNegInt, Positive, PositiveInt, Share, Status, Strict, as_list, section

INDEX_KEYS = ("warc_root", "mime", "status", "hosts")  # source keys of format cc_index only
_CALLABLE = r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"  # module:function


class Fields(Strict):
    """Column names; a field left out of a user's map (or null) is not read."""

    id: Optional[str] = None
    text: str
    url: Optional[str] = None
    date: Optional[str] = None


class SourceDefaults(Strict):
    """Defaults every source inherits (a source may override any of them)."""

    format: Literal[FORMATS] = "auto"
    fields: Fields = Field(default_factory=lambda: {"id": "id", "text": "text", "url": "url", "date": "date"})
    priority: int = Field(100, description="lower wins when duplicates are resolved by source priority")
    languages: list[str] = Field(default_factory=lambda: ["zh", "en"],
                                 description="fastText language codes kept by the coarse stage; [] keeps all")
    min_language_score: Share = Field(
        0.5, description="CCNet (arXiv 1911.00359) keeps documents with LID score >= 0.5")


class PiiTypes(Strict):
    email: bool = True
    ip: bool = Field(True, description="global addresses only; private ranges and versions stay")
    id_number: bool = Field(True, description="mainland resident ID: check digit and birth date validated")
    phone: bool = Field(True, description="mainland mobile and landline (+ the regions below)")
    bank_card: bool = Field(True, description="Luhn + issuer prefix + grouping or card context")
    account: bool = Field(True, description="the identifier after QQ / 微信 / 支付宝")


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
    validator: Optional[Annotated[str, Field(pattern=_CALLABLE)]] = None

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v):
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return v


class Pii(Strict):
    """Personal information replaced by typed placeholders after the coarse
    rules and before dedup (pipeline/stages/pii.py; rules, validators and measured
    recall in docs/PII.md).  Each kept document records how many spans of
    each type were replaced (pii_counts), never the values.  A source can
    override this section: sources.NAME.pii: {enabled: false} or
    {types: {email: false}}."""

    enabled: bool = True
    types: PiiTypes = section(PiiTypes)
    phone_regions: list[Literal["cn", "hk", "tw"]] = Field(default_factory=lambda: ["cn"],
                                                           description="add hk, tw")
    custom: list[CustomPii] = Field(default_factory=list, description=(
        "Your own types (validator optional):\n"
        "  [{type: employee_id, pattern: 'EMP-\\d{6}', placeholder: '<EMPLOYEE_ID>',\n"
        "    validator: 'mypkg.checks:valid_employee_id'}]"))

    @model_validator(mode="after")
    def _custom_names(self):
        taken = set(PiiTypes.model_fields)
        for c in self.custom:
            if c.type in taken:
                raise ValueError(f"custom type {c.type!r} is already a type (or listed twice)")
            taken.add(c.type)
        return self


class Source(SourceDefaults):
    """One input source: file globs, a format, and any key of source_defaults."""

    paths: Annotated[list[str], Field(min_length=1)]
    name: Optional[str] = None  # filled in by the loader
    # format cc_index only (see pipeline/io/readers/cc_index.py)
    warc_root: Optional[str] = None
    mime: Optional[Annotated[list[str], Field(min_length=1)]] = None
    status: Optional[Annotated[list[Status], Field(min_length=1)]] = None
    hosts: Optional[list[str]] = None
    pii: Optional[PiiOverride] = None  # overrides of the pii section for this source

    _paths_list = field_validator("paths", mode="before")(as_list)

    @model_validator(mode="after")
    def _index_keys(self):
        given = [k for k in INDEX_KEYS if getattr(self, k) is not None]
        if self.format != "cc_index" and given:
            raise ValueError(f"{', '.join(given)}: only for format cc_index (this source is {self.format})")
        if self.format == "cc_index" and not self.warc_root:
            raise ValueError("format cc_index needs warc_root (the prefix the index's warc_filename is joined to)")
        return self


class Read(Strict):
    max_payload_bytes: PositiveInt = Field(5000000, description=(
        "WARC payloads over this many bytes are dropped (reason too_large) without being parsed.  Common Crawl "
        "truncates payloads at 1 MiB; 5 MB leaves room for other crawlers while keeping one record's memory "
        "bounded."))
    max_decompressed_bytes: PositiveInt = Field(20000000, description=(
        "Cap on Content-Encoding (gzip/deflate/br) output: a payload that inflates past it is dropped "
        "(decompressed_too_large), never inflated in full."))
    max_header_bytes: Annotated[int, Field(ge=1024)] = Field(262144, description=(
        "Cap on one WARC header block and one HTTP header block.  Real ones are a few KB (Common Crawl's stay "
        "under 16 KB); a record over it is a dead letter and reading resumes at the next record."))
    max_invalid_utf8_share: Share = Field(0.01, description=(
        "UTF-8 text with at most this share of invalid bytes (a stray byte, a character cut by WARC-Truncated "
        "at 1 MiB) is decoded with U+FFFD for each one, counted in the statistics; more than that fails as "
        "decode_error."))
    html_content_types: Annotated[list[str], Field(min_length=1)] = Field(
        default_factory=lambda: ["text/html", "application/xhtml+xml"])
    accept_status: list[Status] = Field(default_factory=lambda: [200])
    progress_every_s: Positive = Field(10, description="per-worker progress lines in the log")
    split_bytes: Annotated[int, Field(ge=65536)] = Field(4194304, description=(
        "WARC/WET files of many gzip members (Common Crawl's: one record per member) are read in byte ranges "
        "of this size, so a runner hands out more units of work than files and the last file does not "
        "straggle; a record belongs to the range its member starts in.  Other files are read whole.  4 MiB is "
        "~200 Common Crawl records, ~5 s of extraction on one core; each range costs one open and one seek.  "
        "Files smaller than 8 ranges are cut into 8 (of at least 256 KiB), so a few files still spread over "
        "many workers."))
    language_gate: Literal["off", "metadata", "metadata+fasttext"] = Field("metadata+fasttext", description=(
        "Language gate before extraction (pipeline/io/language_gate.py), for sources that list languages: "
        "off | metadata (Common Crawl's metadata record, WET's WARC-Identified-Content-Language) | "
        "metadata+fasttext (and, where there is no metadata, fastText lid.176 on a cheap text of the page).  "
        "Drops are read/language_prefilter with the evidence; the post-extraction language ID still applies "
        "to what passes.  Measured on every real page we have: docs/LANGUAGE_GATE.md."))
    language_gate_min_share: Share = Field(0.1, description=(
        "A page whose reliable CLD2 verdict gives no kept language at least this share of its text is dropped "
        "(measured: docs/LANGUAGE_GATE.md)."))
    language_gate_min_confidence: Share = Field(0.9, description=(
        "fastText fallback: drop only when the top language is not kept and its probability is at least this."))
    language_gate_max_bytes: Annotated[int, Field(ge=1024)] = Field(
        65536, description="fastText fallback: bytes of HTML read for the cheap text.")


class Extract(Strict):
    engine: Literal["trafilatura", "resiliparse"] = Field("trafilatura", description=(
        "trafilatura (the default: better text, docs/EXTRACTION.md) or resiliparse (1.4 against 24.6 CPU ms "
        "per page, magic-html F1 0.741 against 0.799; datatrove's Resiliparse settings).  Both run in the "
        "bounded child process below."))
    isolation: Literal["subprocess", "inprocess"] = Field("subprocess", description=(
        "subprocess: the extractor runs in a child process per worker so a hard time limit and a memory limit "
        "hold even for hangs inside lxml (C code).  inprocess: no hard limit (debugging only)."))
    timeout_s: Positive = Field(20, description="hard limit per page; trafilatura median is ~27 ms here")
    memory_limit_mb: NonNegInt = Field(2048, description="RLIMIT_AS of the extractor process; 0 = unlimited")
    include_comments: bool = False
    include_tables: bool = True
    favor: Literal["balanced", "precision", "recall"] = Field(
        "balanced", description="balanced | precision | recall (trafilatura's modes)")
    fast: bool = Field(False, description="trafilatura fast mode (skips fallback extractors)")
    deduplicate: bool = False
    fallback_min_share: Share = Field(0.3, description=(
        "trafilatura only: when its text has fewer than this share of the tokens resiliparse finds on the page "
        "(and resiliparse finds at least fallback_min_tokens), take resiliparse's text: trafilatura kept a "
        "fragment (one post of a forum thread, the chrome).  0 = off.  Chosen on one half of the Chinese "
        "magic-html pages, checked on the other half, the English pages and trafilatura-eval "
        "(docs/EXTRACTION.md); costs a resiliparse pass per page (+9 % extraction CPU time there)."))
    fallback_min_tokens: NonNegInt = 30

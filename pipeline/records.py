"""The record types that flow between stages.

A reader emits ``RawRecord``s; extraction turns them into ``Document``s; every
stage passes ``Document``s on and sends what it rejects to ``Dropped`` (a policy
said no, with a reason) or ``Failed`` (it could not be processed, with the
error).  All three are plain dataclasses so that Beam's default coder pickles
them on every runner; their Parquet form is declared in ``schemas``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass, field
from typing import Optional

DROPPED, FAILED, SKIPPED = "dropped", "failed", "skipped"  # output tags
_SURROGATE = re.compile("[\ud800-\udfff]")


def _writable(row: dict) -> dict:
    """Parquet and Beam's coders take text as strict UTF-8.  The readers make
    every field they take from the input well-formed (``RawRecord.well_formed``);
    this is the last guard for text that quotes the input some other way (an
    exception message, the keys of a JSON object): each lone surrogate in a
    top-level text column becomes U+FFFD, so no row can end a job."""
    for k, v in row.items():
        if isinstance(v, str) and _SURROGATE.search(v):
            row[k] = _SURROGATE.sub("\ufffd", v)
    return row


def record_key(source: str, file: str, position: int | str) -> str:
    """Stable unique key of one input record: the same file and position give
    the same key on every rerun, runner and worker count.  The full path (URI)
    is part of it, so shards with the same base name in different directories
    (``d1/part-00000.jsonl``, ``d2/part-00000.jsonl``) never collide."""
    # surrogatepass: a key never fails on text that is not valid Unicode (readers.shown_path)
    h = hashlib.blake2b(f"{source}\x00{file}\x00{position}".encode("utf-8", "surrogatepass"), digest_size=12)
    return h.hexdigest()


@dataclass
class RawRecord:
    """One document-bearing input record, before extraction."""

    key: str  # unique join key (see record_key)
    id: str
    source: str
    file: str
    offset: int
    url: Optional[str] = None
    date: Optional[str] = None
    # exactly one of payload (HTML bytes to extract) or text (already plain text)
    payload: Optional[bytes] = None
    text: Optional[str] = None
    charset: Optional[str] = None  # from the HTTP Content-Type header
    language_hint: Optional[str] = None  # e.g. WET's WARC-Identified-Content-Language
    # invalid UTF-8 bytes and lone surrogates replaced by U+FFFD (payload.decode_text_utf8, well_formed)
    replaced_bytes: int = 0

    def well_formed(self) -> "RawRecord":
        """Replace lone surrogates (JSON escapes such as "\\ud800") in every text
        field with U+FFFD and count them in ``replaced_bytes``: the readers call it
        on every record they emit, so no later stage sees text that is not valid
        Unicode."""
        from .textnorm import replace_surrogates

        for name in ("id", "url", "date", "text", "language_hint"):
            value = getattr(self, name)
            if isinstance(value, str):
                value, n = replace_surrogates(value)
                if n:
                    setattr(self, name, value)
                    self.replaced_bytes += n
        return self


def signal_rows(signals: Optional[dict], scores: Optional[dict] = None) -> Optional[list]:
    """The ``signals`` column: measured signals in the order taken, then the
    classifier scores; None when nothing was measured."""
    if signals is None and not scores:
        return None
    rows = [{"name": k, "value": float(v)} for k, v in (signals or {}).items()]
    rows += [{"name": k, "value": float(v)} for k, v in sorted((scores or {}).items())]
    return rows


@dataclass
class Document:
    key: str
    id: str
    source: str
    text: str
    url: Optional[str] = None
    date: Optional[str] = None
    file: Optional[str] = None
    offset: Optional[int] = None
    raw_byte_count: Optional[int] = None
    language: Optional[str] = None
    language_score: Optional[float] = None
    token_count: Optional[int] = None
    scores: Optional[dict] = None
    dedup_cluster: Optional[str] = None
    dedup_cluster_size: Optional[int] = None
    pii_counts: Optional[dict] = None  # type -> spans replaced by the pii stage ({} found none; None: did not run)
    # signal name -> measured value: the coarse rules' measures and language ID (docs/SIGNALS.md);
    # classifier scores join them in the written row
    signals: Optional[dict] = None
    extra: dict = field(default_factory=dict)  # stage scratch space, never written

    def to_row(self) -> dict:
        return _writable({
            "id": self.id,
            "source": self.source,
            "url": self.url,
            "date": self.date,
            "language": self.language,
            "language_score": self.language_score,
            "text": self.text,
            "char_count": len(self.text),
            "byte_count": len(self.text.encode("utf-8", "surrogatepass")),
            "raw_byte_count": self.raw_byte_count,
            "token_count": self.token_count,
            "scores": ([{"label": k, "prob": float(v)} for k, v in sorted(self.scores.items())]
                       if self.scores is not None else None),
            "dedup_cluster": self.dedup_cluster,
            "dedup_cluster_size": self.dedup_cluster_size,
            "pii_counts": ([{"type": k, "count": int(v)} for k, v in sorted(self.pii_counts.items())]
                           if self.pii_counts is not None else None),
            "file": self.file,
            "offset": self.offset,
            "signals": signal_rows(self.signals, self.scores),
        })

    def replace(self, **changes) -> "Document":
        """A copy with ``changes``; a new text forgets the token count of the old
        one (``token_count`` always counts the current text, or is None)."""
        if "text" in changes and "token_count" not in changes and changes["text"] != self.text:
            changes["token_count"] = None
        return dataclasses.replace(self, **changes)


@dataclass
class Dropped:
    """Processed and rejected by a policy, always with a reason."""

    key: str
    id: str
    source: str
    stage: str
    reason: str
    url: Optional[str] = None
    detail: Optional[str] = None
    char_count: Optional[int] = None
    byte_count: Optional[int] = None
    excerpt: Optional[str] = None
    file: Optional[str] = None
    offset: Optional[int] = None
    signals: Optional[list] = None  # the signals column (signal_rows)

    @classmethod
    def of(cls, rec, stage: str, reason: str, detail: str | None = None, excerpt_chars: int = 200) -> "Dropped":
        """Build from a RawRecord or Document."""
        text = getattr(rec, "text", None)
        payload = getattr(rec, "payload", None)
        if text is not None:
            chars, nbytes = len(text), len(text.encode("utf-8", "surrogatepass"))
            excerpt = text[:excerpt_chars]
        else:
            chars, nbytes, excerpt = None, (len(payload) if payload is not None else None), None
        return cls(key=rec.key, id=rec.id, source=rec.source, stage=stage, reason=reason, url=rec.url,
                   detail=detail, char_count=chars, byte_count=nbytes, excerpt=excerpt,
                   file=rec.file, offset=rec.offset,
                   signals=signal_rows(getattr(rec, "signals", None), getattr(rec, "scores", None)))

    def to_row(self) -> dict:
        return _writable({k: getattr(self, k) for k in ("id", "source", "url", "stage", "reason", "detail",
                                                        "char_count", "byte_count", "excerpt", "file", "offset",
                                                        "signals")})


@dataclass
class Candidate:
    """A document as the coarse rules saw it (``output.candidates``), whatever
    happened to it afterwards: the input of ``mdfs refilter`` and of review."""

    key: str
    id: str
    source: str
    text: str
    language: str
    language_score: float
    signals: dict
    removed_lines: list  # [(kind, line)]
    coarse_reason: Optional[str] = None
    coarse_detail: Optional[str] = None
    token_count: int = 0
    replacement_chars_removed: int = 0
    url: Optional[str] = None
    date: Optional[str] = None
    raw_byte_count: Optional[int] = None
    file: Optional[str] = None
    offset: Optional[int] = None

    def to_row(self) -> dict:
        return _writable({"key": self.key, "id": self.id, "source": self.source, "url": self.url, "date": self.date,
                "language": self.language, "language_score": float(self.language_score), "text": self.text,
                "removed_lines": [{"kind": k, "line": line} for k, line in self.removed_lines],
                "signals": signal_rows(self.signals), "coarse_reason": self.coarse_reason,
                "coarse_detail": self.coarse_detail, "char_count": len(self.text), "token_count": self.token_count,
                "replacement_chars_removed": self.replacement_chars_removed, "raw_byte_count": self.raw_byte_count,
                "file": self.file, "offset": self.offset})


@dataclass
class ScoredCandidate:
    """Classifier scores of one candidate (``candidates/scores/``)."""

    key: str
    id: str
    source: str
    scores: dict

    def to_row(self) -> dict:
        return {"key": self.key, "id": self.id, "source": self.source,
                "scores": [{"label": k, "prob": float(v)} for k, v in sorted(self.scores.items())]}


@dataclass
class Failed:
    """Could not be processed: the dead letter, always with the error."""

    source: str
    stage: str
    error_kind: str
    message: str
    key: Optional[str] = None
    id: Optional[str] = None
    file: Optional[str] = None
    offset: Optional[int] = None
    url: Optional[str] = None
    # input records this dead letter stands for: 1 for one record; None for a
    # damaged stretch whose record count the container does not tell
    records: Optional[int] = 1

    @classmethod
    def of(cls, rec, stage: str, error_kind: str, message: str) -> "Failed":
        return cls(source=rec.source, stage=stage, error_kind=error_kind, message=message[:2000], key=rec.key,
                   id=rec.id, file=rec.file, offset=rec.offset, url=rec.url)

    def to_row(self) -> dict:
        return _writable({k: getattr(self, k) for k in ("id", "source", "file", "offset", "url", "stage",
                                                        "error_kind", "message", "records")})


@dataclass(frozen=True)
class Skipped:
    """A WARC record that never carries a document (request, metadata, warcinfo),
    or index rows a cc_index source did not select: counted per type, outside
    the read = kept + dropped + failed invariant."""

    source: str
    record_type: str
    count: int = 1  # a reader may report many at once (cc_index: index rows not selected, per reason)

"""Extraction stage: HTML payload -> main text with trafilatura.

Order of work per record: refuse binary payloads, decode by the best charset
evidence (HTTP header, ``<meta>``, detection; see ``payload.decode_html``), then
extract.  Extraction runs in a child process by default (``extract.isolation:
subprocess``) so that a hard per-document time limit and a memory limit hold
even when a page hangs inside lxml; the child also decodes, so the page crosses
the pipe as the bytes it was read as and is decoded once, under the same
limits.  ``inprocess`` skips the child (faster to debug, no hard limit).  Records that are already text (WET, JSONL, Parquet)
pass through.
"""
from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, NamedTuple

import apache_beam as beam

from ..io import payload as pl
from .bounded_child import BoundedChild, ChildExited, ChildTimeout
from .extract_worker import extract_text, extraction_options
from ..records import Document, RawRecord
from ..stage import CARRY, COUNT, BuildContext, Stage, StageContext, apply_stage
from ..textnorm import clean_surrogates, unescape_entities

if TYPE_CHECKING:
    from ..schema import Extract as ExtractSection

STAGE = "extract"


class ExtractTimeout(Exception):
    pass


class ExtractCrash(Exception):
    pass


class ExtractError(Exception):
    pass


class ExtractMemoryLimit(Exception):
    pass


class ExtractDecodeError(Exception):
    """No charset decodes the payload (``payload.decode_html`` raised)."""


# what became of a page the bounded child could not extract -> the dead letter's error kind
FAILURE_KINDS = {ExtractDecodeError: "decode_error", ExtractTimeout: "extract_timeout", ExtractCrash: "extract_crash",
                 ExtractMemoryLimit: "extract_memory_limit"}


class Extracted(NamedTuple):
    text: str | None
    encoding: str
    evidence: str
    replaced: int


class ExtractorProcess:
    """A persistent extractor child process with a hard time limit per page
    (``bounded_child``; the child is ``extract_worker``)."""

    def __init__(self, options: dict, timeout_s: float, memory_limit_mb: int):
        self.options = options
        self.timeout_s = float(timeout_s)
        self.memory_limit_mb = int(memory_limit_mb)
        self._child = BoundedChild([])

    def close(self):
        self._child.close()

    def extract(self, html: str, url: str | None) -> str | None:
        """Main text of decoded HTML."""
        return self._ask(json.dumps({"url": url}).encode() + b"\n", html.encode("utf-8", "surrogatepass"))

    def extract_payload(self, data: bytes, charset: str | None, max_invalid: float, url: str | None) -> Extracted:
        """Decode the raw payload (``payload.decode_html``) and extract, both in the child."""
        header = json.dumps({"url": url, "charset": charset, "max_invalid": max_invalid}).encode()
        head, _, text = self._ask(header + b"\n", data, decoded_here=True).partition("\n")
        info = json.loads(head)
        return Extracted(text or None, info["encoding"], info["evidence"], int(info["replaced"]))

    def _ask(self, header: bytes, page: bytes, decoded_here: bool = False) -> str | None:
        if not self._child.running:  # the settings as they are now (a test lowers the memory limit)
            module = __name__.rsplit(".", 1)[0] + ".extract_worker"
            self._child.argv = [sys.executable, "-m", module, json.dumps(self.options), str(self.memory_limit_mb)]
            self._child.start()
        try:
            status, raw = self._child.request(self.timeout_s, header, page)
        except OSError as exc:
            raise ExtractCrash(f"extractor process died before the page was sent: {exc}") from exc
        except ChildTimeout:
            raise ExtractTimeout(f"extraction exceeded {self.timeout_s:g} s") from None
        except ChildExited as exc:
            raise ExtractCrash(f"extractor process {exc}") from None
        body = raw.decode("utf-8", "surrogatepass")
        if status == b"O":
            return body
        if status == b"N":
            return body if decoded_here else None  # the charset line
        if status == b"M":
            self.close()  # a process that hit its address-space limit is not reused
            raise ExtractMemoryLimit(body)
        if status == b"D":
            raise ExtractDecodeError(body)
        raise ExtractError(body)


class ExtractDoFn(beam.DoFn):
    """``cfg``: the ``extract`` section; ``max_invalid_utf8_share``: ``read.max_invalid_utf8_share``."""

    def __init__(self, cfg: "ExtractSection", max_invalid_utf8_share: float, ctx: StageContext = StageContext(STAGE)):
        self.cfg = cfg
        self.max_invalid_utf8_share = float(max_invalid_utf8_share)
        self.ctx = ctx

    def setup(self):
        self._max_invalid = self.max_invalid_utf8_share
        self._options = extraction_options(self.cfg)
        self._proc = None
        if self.cfg.isolation == "subprocess":
            self._proc = ExtractorProcess(self._options, self.cfg.timeout_s, self.cfg.memory_limit_mb)

    def teardown(self):
        if self._proc is not None:
            self._proc.close()

    def process(self, rec: RawRecord):
        if rec.text is not None:  # WET, JSONL, Parquet: already text (trafilatura resolves entities in HTML)
            yield self._document(rec, unescape_entities(rec.text))
            return
        data = rec.payload or b""
        if pl.looks_binary(data, rec.charset):
            yield self.ctx.drop(rec, "binary_payload", f"{len(data)} bytes")
            return
        try:
            res = self._extract(data, rec)
        except tuple(FAILURE_KINDS) as exc:  # the bounded child's verdicts on this page
            yield self.ctx.fail(rec, FAILURE_KINDS[type(exc)], str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - ExtractError or in-process failure
            yield self.ctx.fail(rec, "extract_error", f"{type(exc).__name__}: {exc}")
            return
        rec.replaced_bytes = res.replaced
        text = (res.text or "").strip()
        if not text:
            yield self.ctx.drop(rec, "no_main_text", f"charset {res.encoding} ({res.evidence})")
            return
        yield self._document(rec, text)

    def _extract(self, data: bytes, rec: RawRecord) -> Extracted:
        if self._proc is not None:
            return self._proc.extract_payload(data, rec.charset, self._max_invalid, rec.url)
        try:
            html, encoding, evidence, replaced = pl.decode_html(data, rec.charset, self._max_invalid)
        except Exception as exc:  # noqa: BLE001 - UnicodeError, or any codec surprise: this record only
            raise ExtractDecodeError(f"{type(exc).__name__}: {exc}") from exc
        return Extracted(extract_text(html, rec.url, self._options), encoding, evidence, replaced)

    @staticmethod
    def _document(rec: RawRecord, text: str) -> Document:
        return Document(key=rec.key, id=rec.id, source=rec.source, text=clean_surrogates(text), url=rec.url,
                        date=rec.date,
                        file=rec.file, offset=rec.offset,
                        raw_byte_count=len(rec.payload) if rec.payload is not None
                        else len(rec.text.encode("utf-8", "surrogatepass")),
                        extra={k: v for k, v in (("language_hint", rec.language_hint),
                                                 ("replaced_bytes", rec.replaced_bytes)) if v})


class Extract(beam.PTransform):
    def __init__(self, cfg: "ExtractSection", max_invalid_utf8_share: float, excerpt_chars: int = 200):
        super().__init__()
        self.cfg = cfg
        self.max_invalid_utf8_share = max_invalid_utf8_share
        self.ctx = StageContext(STAGE, excerpt_chars)

    def expand(self, records):
        return apply_stage(records, "Extract", ExtractDoFn(self.cfg, self.max_invalid_utf8_share, self.ctx))


class ExtractStage(Stage):
    """Main text out of each page (trafilatura or resiliparse, in a bounded child)."""

    name = section = "extract"
    changes_text = True
    refilter = CARRY  # a refilter starts from the candidates: nothing is extracted again
    funnel_fields = {"decoded_with_replacement": COUNT}

    def transform(self, build: BuildContext) -> beam.PTransform:
        cfg = build.cfg
        return Extract(cfg.extract, cfg.read.max_invalid_utf8_share, build.excerpt_chars)

    def kept_events(self, doc):
        return [((doc.source, "decoded_with_replacement"), 1)] if doc.extra.get("replaced_bytes") else []

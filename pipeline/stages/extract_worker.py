"""Child process that runs the extractor (trafilatura or resiliparse) for ``extract.ExtractorProcess``.

Protocol over stdin/stdout, one request at a time:
  request:  4-byte big-endian length, then a JSON header line and the page.  With
            ``charset`` (and ``max_invalid``) in the header the page is the raw
            payload, decoded here (``payload.decode_html``); without, it is the
            HTML already decoded, as UTF-8.
  response: 1 status byte (O = text, N = no main text, D = decode error,
            M = memory limit, E = error), 4-byte length, body.  For a raw payload
            the body of O and N starts with a JSON line: the charset, its
            evidence and the replaced bytes; then the text (UTF-8).
Running extraction here lets the parent enforce a hard time limit (it kills this
process, which stops hangs inside lxml's C code too) and a memory limit
(RLIMIT_AS), without either reaching the Beam worker.  Decoding here too means
the page is decoded once, in the bounded process, and crosses the pipe as the
bytes it was read as (decoding in the parent, then encoding for the pipe and
decoding again here, was a third of the fast engine's extraction cost).
"""
from __future__ import annotations

import json
import re
import struct
import sys

from .bounded_child import read_exact, write_answer


OPTION_KEYS = ("engine", "include_comments", "include_tables", "favor", "fast", "deduplicate",
               "fallback_min_share", "fallback_min_tokens")

# WeChat (mp.weixin.qq.com) ships the article body as <div id="js_content"
# style="visibility: hidden;"> and reveals it with JavaScript; an extractor that
# honours the style (resiliparse) returns only the account name.  Measured on
# the magic-html WeChat page: resiliparse F1 0.02 without this, trafilatura
# unaffected (docs/EXTRACTION.md).
_WECHAT_ID = re.compile(r"""\bid=["']js_content["']""", re.I)
_HIDDEN = re.compile(r"visibility\s*:\s*hidden\s*;?", re.I)
# Tokens for the fallback's length test: one CJK character, or one run of other
# word characters (the tokens of bench/extraction_metrics.py).
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")


def extraction_options(extract_cfg) -> dict:
    """The extractor settings out of the ``extract`` config section."""
    return {k: getattr(extract_cfg, k) for k in OPTION_KEYS}


def count_tokens(text: str | None) -> int:
    return sum(1 for _ in _TOKEN.finditer(text or ""))


def unhide_wechat_body(html: str) -> str:
    """Drop ``visibility: hidden`` from the opening tag of WeChat's article body.
    Plain string searches around the id (tags of at most 2,000 characters), so
    a hostile page costs linear time."""
    m = _WECHAT_ID.search(html) if "js_content" in html else None
    if m is None:
        return html
    start = html.rfind("<", max(0, m.start() - 2000), m.start())
    end = html.find(">", m.end(), m.end() + 2000)
    if start < 0 or end < 0 or html[start:start + 4].lower() != "<div":
        return html
    return html[:start] + _HIDDEN.sub("", html[start:end + 1]) + html[end + 1:]


def extract_text(html: str, url: str | None, options: dict) -> str | None:
    """Main text of one page with the configured engine (default trafilatura).

    With trafilatura, when its text has fewer than ``fallback_min_share`` of the
    tokens resiliparse finds on the page (and resiliparse finds at least
    ``fallback_min_tokens``), resiliparse's text is taken instead: trafilatura
    then kept a fragment (one forum post of many, a page's chrome).  The share
    was chosen on one half of the Chinese magic-html pages and checked on the
    other half, the English pages and trafilatura-eval (docs/EXTRACTION.md)."""
    engine = options.get("engine", "trafilatura")
    if engine not in ("trafilatura", "resiliparse"):
        raise ValueError(f"unknown extract.engine {engine!r}")
    html = unhide_wechat_body(html)
    if engine == "resiliparse":
        return resiliparse_text(html)
    text = trafilatura_text(html, url, options)
    share = float(options.get("fallback_min_share", 0) or 0)
    if share > 0:
        alt = resiliparse_text(html)
        n_alt = count_tokens(alt)
        if n_alt >= int(options.get("fallback_min_tokens", 0)) and count_tokens(text) < share * n_alt:
            return alt
    return text


def resiliparse_text(html: str) -> str | None:
    """resiliparse's main-content heuristics with the settings of datatrove's
    Resiliparse extractor (0.10), so that the two pipelines do the same work.
    Its ``comments`` switch stays on: off, its comment heuristic also removes
    article text (magic-html F1 0.698 against 0.741, docs/EXTRACTION.md), so
    ``include_comments`` applies to trafilatura only."""
    from resiliparse.extract.html2text import extract_plain_text

    return extract_plain_text(
        html, preserve_formatting=True, main_content=True, list_bullets=True, alt_texts=False,
        links=False, form_fields=False, noscript=False, comments=True)


def trafilatura_text(html: str, url: str | None, options: dict) -> str | None:
    import trafilatura

    return trafilatura.extract(
        html,
        url=url,
        output_format="txt",
        include_comments=bool(options.get("include_comments", False)),
        include_tables=bool(options.get("include_tables", True)),
        include_images=False,
        include_links=False,
        favor_precision=options.get("favor") == "precision",
        favor_recall=options.get("favor") == "recall",
        fast=bool(options.get("fast", False)),
        deduplicate=bool(options.get("deduplicate", False)),
    )


def main() -> None:
    options = json.loads(sys.argv[1])
    memory_limit_mb = int(sys.argv[2])
    if memory_limit_mb > 0:
        import resource

        limit = memory_limit_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # import once, before the first page, only what this configuration uses
    engine = options.get("engine", "trafilatura")
    if engine == "resiliparse" or float(options.get("fallback_min_share", 0) or 0) > 0:
        import resiliparse.extract.html2text  # noqa: F401 - the fast engine, and trafilatura's fallback
    if engine == "trafilatura":
        import trafilatura  # noqa: F401

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            (n,) = struct.unpack(">I", read_exact(stdin, 4))
            body = read_exact(stdin, n)
        except EOFError:
            return
        try:
            status, out = answer(body, options)
        except MemoryError:
            status, out = b"M", b"MemoryError: page exceeds the extractor's memory limit"
        except Exception as exc:  # noqa: BLE001 - reported to the parent as a failure
            status, out = b"E", _message(exc)
        write_answer(stdout, status, out)


def _message(exc: Exception) -> bytes:
    return f"{type(exc).__name__}: {exc}".encode("utf-8", "replace")[:4000]


def answer(body: bytes, options: dict) -> tuple[bytes, bytes]:
    """(status, body) of the answer to one request (the module docstring)."""
    header, _, page = body.partition(b"\n")
    req = json.loads(header)
    head = b""
    if "charset" in req:  # the raw payload
        # imported on the first such request: a child that only extracts keeps
        # charset_normalizer out of its address space (its memory limit)
        from ..io.payload import decode_html

        try:
            decoded = decode_html(page, req["charset"], float(req["max_invalid"]))
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 - UnicodeError, or any codec surprise: this page only
            return b"D", _message(exc)
        html = decoded.text
        head = json.dumps({"encoding": decoded.encoding, "evidence": decoded.evidence,
                           "replaced": decoded.replaced}).encode() + b"\n"
    else:
        html = page.decode("utf-8", "surrogatepass")
    text = extract_text(html, req.get("url"), options)
    if not text:
        return b"N", head
    return b"O", head + text.encode("utf-8", "surrogatepass")


if __name__ == "__main__":
    main()

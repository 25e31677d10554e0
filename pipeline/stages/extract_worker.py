"""Child process that runs the extractor (trafilatura or resiliparse) for ``extract.ExtractorProcess``.

Protocol over stdin/stdout, one request at a time:
  request:  4-byte big-endian length, then a JSON header line and the HTML (UTF-8)
  response: 1 status byte (O = text, N = no main text, M = memory limit, E = error), 4-byte length, UTF-8 body
Running extraction here lets the parent enforce a hard time limit (it kills this
process, which stops hangs inside lxml's C code too) and a memory limit
(RLIMIT_AS), without either reaching the Beam worker.
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


def extraction_options(extract_cfg: dict) -> dict:
    """The extractor settings out of the ``extract`` config section."""
    return {k: extract_cfg[k] for k in OPTION_KEYS if k in extract_cfg}


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
        header, _, html = body.partition(b"\n")
        url = json.loads(header).get("url")
        try:
            text = extract_text(html.decode("utf-8", "surrogatepass"), url, options)
            status, out = (b"N", b"") if not text else (b"O", text.encode("utf-8", "surrogatepass"))
        except MemoryError:
            status, out = b"M", b"MemoryError: page exceeds the extractor's memory limit"
        except Exception as exc:  # noqa: BLE001 - reported to the parent as a failure
            status, out = b"E", f"{type(exc).__name__}: {exc}".encode("utf-8", "replace")[:4000]
        write_answer(stdout, status, out)


if __name__ == "__main__":
    main()

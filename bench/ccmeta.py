"""Common Crawl-style ``languages-cld2`` verdicts for pages that have none.

Common Crawl runs CLD2 over every fetched HTML page (HTML mode: CLD2 skips
tags, scripts and styles itself) after converting it to UTF-8, with the
host's top-level domain as a hint, and writes the result into the metadata
record that follows the response: ``reliable``, ``text-bytes`` and up to three
languages with ``text-covered`` (the share of the text) and ``score``.
Simplified and Traditional Chinese are both ``zho``.  This module does the
same with ``pycld2`` (the same CLD2 library), so benchmark input carries
verdicts computed from the page, never from any label we know.

``bench/eval_language_gate.py`` checks it against every real Common Crawl
metadata record in ../shared/data (docs/LANGUAGE_GATE.md).
"""
from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

from mdfs.pipeline.io.payload import decode_html


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _utf8(html: str) -> bytes:
    # CLD2 refuses lone surrogates and C0/C1 control characters as "invalid UTF-8"
    # (8 of the 505 real pages hold some, in scripts); they carry no language
    return _CONTROL.sub(" ", html).encode("utf-8", "replace").decode("utf-8", "replace").encode("utf-8")


def cld2_verdict(body: bytes, charset: str | None, url: str | None) -> dict | None:
    """The ``languages-cld2`` object Common Crawl would write, or None when
    CLD2 cannot run on the page."""
    import pycld2

    try:
        html = decode_html(body, charset, 0.01).text
    except (UnicodeError, LookupError, ValueError):
        return None
    tld = ""
    host = urlsplit(url or "").hostname or ""
    if "." in host:
        tld = host.rsplit(".", 1)[1]
    data = _utf8(html)
    try:
        reliable, text_bytes, details = pycld2.detect(data, isPlainText=False, hintTopLevelDomain=tld)
    except pycld2.error:
        try:
            reliable, text_bytes, details = pycld2.detect(data, isPlainText=False)
        except pycld2.error:
            return None
    langs: dict[str, dict] = {}
    for name, code, percent, score in details:
        if code == "un" or percent <= 0:
            continue
        iso3 = "zho" if code.startswith("zh") else _iso3(code)
        entry = langs.setdefault(iso3, {"code": "zh" if iso3 == "zho" else code, "code-iso-639-3": iso3,
                                        "text-covered": 0.0, "score": float(score),
                                        "name": "Chinese" if iso3 == "zho" else name})
        entry["text-covered"] = round(entry["text-covered"] + percent / 100.0, 2)
    ordered = sorted(langs.values(), key=lambda e: -e["text-covered"])
    return {"reliable": bool(reliable), "text-bytes": int(text_bytes), "languages": ordered}


def _iso3(code: str) -> str:
    from mdfs.pipeline.io.language_gate import iso639_3

    return iso639_3(code)


def metadata_block(verdict: dict | None, charset: str | None = None) -> bytes:
    """The body of a Common Crawl metadata record (application/warc-fields)."""
    lines = ["fetchTimeMs: 100"]
    if charset:
        lines.append(f"charset-detected: {charset}")
    if verdict is not None:
        lines.append("languages-cld2: " + json.dumps(verdict, separators=(",", ":"), ensure_ascii=False))
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")

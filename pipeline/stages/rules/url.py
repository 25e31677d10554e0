"""URL and domain rules: block lists and allow lists from files.

A list file holds one entry per line: a domain (``example.com`` blocks it and
every subdomain) or ``kw:WORD`` (blocks hosts containing WORD).  A host on an
allow list is never blocked by these rules.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from .common import read_list, resolve


def host_of(url: str | None) -> str:
    if not url:
        return ""
    try:
        host = urlsplit(url if "//" in url else "//" + url).hostname or ""
    except ValueError:
        return ""
    return host.lower().rstrip(".")


def _suffixes(host: str):
    parts = host.split(".")
    for i in range(len(parts)):
        yield ".".join(parts[i:])


class UrlFilter:
    def __init__(self, blocklists: list[str] = (), allowlists: list[str] = ()):
        self.blocked_domains: set[str] = set()
        self.blocked_keywords: list[str] = []
        for f in blocklists:
            for entry in read_list(resolve(f)):
                if entry.startswith("kw:"):
                    self.blocked_keywords.append(entry[3:].lower())
                else:
                    self.blocked_domains.add(entry.lower().lstrip("*.").rstrip("."))
        self.allowed_domains = {e.lower().lstrip("*.") for f in allowlists for e in read_list(resolve(f))}

    def check(self, url: str | None):
        """None, or ('url_blocked', matched entry)."""
        host = host_of(url)
        if not host:
            return None
        if any(s in self.allowed_domains for s in _suffixes(host)):
            return None
        for s in _suffixes(host):
            if s in self.blocked_domains:
                return "url_blocked", s
        for kw in self.blocked_keywords:
            if kw in host:
                return "url_blocked", f"kw:{kw}"
        return None

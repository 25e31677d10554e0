"""PII stage: replace personal information with typed placeholders, Chinese first.

Runs after coarse filtering and before dedup, so copies that differ only in a
phone number still match.  Each detected span becomes a placeholder; the
document records how many of each type it replaced (``pii_counts``), never
the values.  Detection runs on a same-length view of the text in which
full-width ASCII (``１３８－００１３``) and the ideographic space are mapped to
ASCII (and no-break/thin spaces and Unicode hyphens to space and hyphen), so
one set of patterns covers both forms and the spans map back 1:1.

Every entity is a pattern *and* a validator; a candidate that fails its
validator is left alone (docs/PII.md has the table):

==============  ===============================================================
``EMAIL``       local@domain.tld (RFC 5321 characters, a letters-only TLD)
``IP``          IPv4 / IPv6 that ``ipaddress`` calls global; private, loopback,
                link-local, reserved and documentation ranges stay, and so do
                dotted quads after "version"/"v"/"版本" or with leading zeros
``ID_NUMBER``   mainland resident ID: 18 characters, province code, a real
                birth date (1900..this year) and the ISO 7064 MOD 11-2 check
                character; the 15-digit legacy form (19YYMMDD) only next to an
                ID context word, since it has no check digit; also grouped
                6-8-4 or 3-3-8-4 (one separator throughout), checked the same way
``PHONE``       mainland mobile (1[3-9] prefixes in use, optional +86/0086,
                3-4-4 groups with space/hyphen/dot), landline (0AA-NNNNNNNN,
                (0AAA)NNNNNNN; with a mainland area code also (010) 1234 5678
                and +86 10 6552 9988; an extension after -/转/分机/ext.; a bare
                12-digit run only next to a phone context word); Hong Kong
                (+852) and Taiwan (+886, 09xx mobile) when listed in
                ``pii.phone_regions``
``BANK_CARD``   13-19 digits (or grouped 4-4-4-4(-3), 4-6-5, 6-13) passing Luhn, with
                an issuer prefix (UnionPay 62, Visa 4, Mastercard 51-55 /
                2221-2720, Amex 34/37, JCB 3528-3589, Discover 6011/65) and
                either card grouping, a card context word or UnionPay's 62;
                never an ISBN (978/979), never after an order/tracking word,
                never a valid ID number
``ACCOUNT``     the identifier after QQ号/QQ, 微信号/微信/WeChat/VX, 支付宝(账号)
==============  ===============================================================

Users add their own types under ``pii.custom`` (a regex, a placeholder and an
optional validator ``module:function`` taking the matched text).
"""
from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Iterable

import apache_beam as beam

from .pii_patterns import (
    ACCOUNT_RE, ACCOUNT_WORDS, ALNUM, CARD_CONTEXT, CARD_RE, DIGITS,
    DIGIT_RUN, EMAIL_CHARS, EMAIL_RE, HK_RE, ID15_RE, ID18_GROUPED_RE,
    ID18_RE, ID_CONTEXT, IPV4_HINT, IPV4_RE, LANDLINE_BARE_RE, LANDLINE_RE,
    MOBILE_PREFIX, MOBILE_RE, NOT_CARD_CONTEXT, NOT_PHONE_LABEL, PHONE_CONTEXT, TW_RE,
    VERSION_BEFORE, ascii_view, card_issuer, ipv6_runs, starts_token, text_before,
    luhn, valid_id15, valid_id18)
from .pii_custom import CustomTimeout, load_custom  # noqa: F401 - load_custom: pii's API
from ..records import Document
from ..stage import BY_NAME, COUNT, BuildContext, Stage, StageContext, apply_stage

if TYPE_CHECKING:
    from ..schema import Pii, Source

STAGE = "pii"
PLACEHOLDERS = {"email": "<EMAIL>", "ip": "<IP>", "id_number": "<ID_NUMBER>", "phone": "<PHONE>",
                "bank_card": "<BANK_CARD>", "account": "<ACCOUNT>"}
TYPES = tuple(PLACEHOLDERS)


class PiiRedactor:
    """Finds and replaces PII; ``types`` says which entity types are on."""

    def __init__(self, types: dict, phone_regions: Iterable[str] = ("cn",), custom=None):
        self.types = {t for t, on in types.items() if on}
        self.phone_regions = set(phone_regions)
        self.custom = custom  # a pii_custom.CustomScanner (load_custom), or None

    def spans(self, text: str) -> list[tuple[int, int, str, str]]:
        """Non-overlapping (start, end, type, placeholder), in text order."""
        view = ascii_view(text)
        found: list[tuple[int, int, int, str, str]] = []  # (start, end, priority, type, placeholder)

        def add(s, e, t, prio, ph=None):
            found.append((s, e, prio, t, ph or PLACEHOLDERS[t]))

        if "email" in self.types and "@" in view:
            for m in EMAIL_RE.finditer(view):
                if starts_token(view, m.start(), EMAIL_CHARS):
                    add(m.start(), m.end(), "email", 0)
        # the longest run of digits: a detector whose every match holds a longer run is
        # not run at all (most pages have no long numbers; each scan costs ~0.1 ms per page)
        runs = [len(r) for r in DIGIT_RUN.findall(view)]
        run = max(runs, default=0)
        digits = run > 0
        # a grouped candidate of an ID's or a card's length that fails its validator (an order number, a
        # mistyped card) is one token: no phone number is taken out of its middle
        blocked: list[tuple[int, int]] = []
        if "id_number" in self.types:
            for s, e in self._ids(view, runs, run, blocked):
                add(s, e, "id_number", 1)
        # a card number is one run of 13-19 digits, or 3-4 groups of four (two runs of exactly four)
        if "bank_card" in self.types and (run >= 13 or sum(n >= 4 for n in runs) >= 3):
            for m in CARD_RE.finditer(view):
                if not starts_token(view, m.start(), ALNUM):  # SF6212...: a code with letters, not a card
                    continue
                if self._is_card(view, m.start(), m.group()):
                    add(m.start(), m.end(), "bank_card", 2)
                elif m.group() != (d := _digits(m.group())) and 13 <= len(d) <= 19:
                    blocked.append(m.span())
        if digits and "phone" in self.types:
            for s, e in self._phones(view, run, runs):
                if not any(s < be and bs < e for bs, be in blocked):
                    add(s, e, "phone", 3)
        if "account" in self.types and any(k in view for k in ACCOUNT_WORDS):
            for m in ACCOUNT_RE.finditer(view):
                g = next(name for name in ("qq", "wx", "ali") if m.group(name))
                add(m.start(g), m.end(g), "account", 4)
        if digits and "ip" in self.types:
            for s, e in self._ips(view):
                add(s, e, "ip", 5)
        if self.custom:  # user patterns and validators, in a child process with a time bound (pii_custom.py)
            for s, e, t, ph in self.custom.find(view):
                add(s, e, t, 6, ph)
        # earliest first; at the same start the higher priority (lower number), then the longer
        found.sort(key=lambda f: (f[0], f[2], f[0] - f[1]))
        out, end = [], -1
        for s, e, _prio, t, ph in found:
            if s >= end:  # a span inside or across one already taken is part of that entity
                out.append((s, e, t, ph))
                end = e
        return out

    def _ids(self, view: str, runs: list[int], run: int, blocked: list):
        """ID numbers: 18 characters whole or grouped 6-8-4 / 3-3-8-4 (the birth date is a run of
        exactly 8), and the 15-digit form next to an ID word; grouped shapes that fail go to ``blocked``."""
        if run >= 17:
            for m in ID18_RE.finditer(view):
                if starts_token(view, m.start(), ALNUM) and valid_id18(m.group().upper()):
                    yield m.span()
        if 8 in runs:
            for m in ID18_GROUPED_RE.finditer(view):
                if starts_token(view, m.start(), ALNUM):
                    if valid_id18(_digits(m.group()).upper()):
                        yield m.span()
                    else:
                        blocked.append(m.span())
        if run >= 15:
            for m in ID15_RE.finditer(view):
                if (starts_token(view, m.start(), ALNUM) and valid_id15(m.group())
                        and ID_CONTEXT.search(text_before(view, m.start(), 20))):
                    yield m.span()

    def _is_card(self, view: str, start: int, raw: str) -> bool:
        d = _digits(raw)
        if not 13 <= len(d) <= 19 or not luhn(d) or d.startswith(("978", "979")) and len(d) == 13:
            return False
        if len(d) == 18 and valid_id18(d):
            return False
        issuer = card_issuer(d)
        if issuer is None:
            return False
        before = text_before(view, start, 12)
        if NOT_CARD_CONTEXT.search(before):
            return False
        grouped = raw != d
        return grouped or bool(CARD_CONTEXT.search(before)) or issuer == "unionpay"

    def _phones(self, view: str, run: int, runs: list[int]):
        """Phone numbers; ``run``: the longest run of digits in ``view``, ``runs``: the lengths of all."""
        for m in MOBILE_RE.finditer(view) if run >= 4 else ():
            number = re.sub(r"\D", "", m.group())[-11:]
            if (starts_token(view, m.start(), DIGITS + "+") and MOBILE_PREFIX.match(number)
                    and not _glued_group(view, m) and not _quantity(view, m) and not _labelled(view, m)):
                yield m.start(), m.end()
        # an unsplit subscriber number is a run of 7-8, a split one two runs of exactly four, or four
        # glued to the area code of an international number (+86 217388-3310: a run of six)
        for m in LANDLINE_RE.finditer(view) if run >= 6 or runs.count(4) >= 2 else ():
            if starts_token(view, m.start(), DIGITS) and not _labelled(view, m):
                yield m.start(), m.end()
        for m in LANDLINE_BARE_RE.finditer(view) if run >= 10 else ():
            if (len(m.group()) in (11, 12) and starts_token(view, m.start(), DIGITS)
                    and PHONE_CONTEXT.search(text_before(view, m.start(), 12)) and not _labelled(view, m)):
                yield m.start(), m.end()
        if "hk" in self.phone_regions:
            for m in HK_RE.finditer(view):
                yield m.start(), m.end()
        if "tw" in self.phone_regions:
            for m in TW_RE.finditer(view):
                yield m.start(), m.end()

    def _ips(self, view: str):
        for m in IPV4_RE.finditer(view) if IPV4_HINT.search(view) else ():
            text = m.group()
            if not starts_token(view, m.start(), DIGITS + "."):
                continue
            if any(len(o) > 1 and o.startswith("0") for o in text.split(".")):
                continue  # leading zeros: a version or a serial, not an address
            if VERSION_BEFORE.search(text_before(view, m.start(), 12)):
                continue
            try:
                if ipaddress.IPv4Address(text).is_global:
                    yield m.start(), m.end()
            except ValueError:
                continue
        for start, end in ipv6_runs(view):
            text = view[start:end]
            # at least three non-empty groups: "db::f" in code, "12:30:45" are not addresses
            if text.count(":") < 2 or sum(1 for g in text.split(":") if g) < 3:
                continue
            try:
                if ipaddress.IPv6Address(text).is_global:
                    yield start, end
            except ValueError:
                continue

    def redact(self, text: str) -> tuple[str, dict]:
        """(text with placeholders, {type: count})."""
        spans = self.spans(text)
        if not spans:
            return text, {}
        parts, counts, pos = [], {}, 0
        for s, e, t, ph in spans:
            parts += [text[pos:s], ph]
            counts[t] = counts.get(t, 0) + 1
            pos = e
        parts.append(text[pos:])
        return "".join(parts), counts


_GROUP_SEP = re.compile(r"[ \-.]")


def _digits(raw: str) -> str:
    """A grouped number without its separators (the ID's check character X stays)."""
    return _GROUP_SEP.sub("", raw)


def _labelled(view: str, m: re.Match) -> bool:
    """Right after an order, tracking, serial or invoice number's label: that number, not a phone."""
    return bool(NOT_PHONE_LABEL.search(text_before(view, m.start(), 14)))


def _glued_group(view: str, m: re.Match) -> bool:
    """A mobile-shaped run inside a longer digit group structure (1,380,013,8000 or 138.0013.8000.5)."""
    s, e = m.start(), m.end()
    return (s > 0 and view[s - 1] in ",.") or (e < len(view) and view[e] in ",." and e + 1 < len(view)
                                                 and view[e + 1].isdigit())


# the unit on the same line only: "...4547\nPeople who..." is a phone before a new line
_UNIT_AFTER = re.compile(r"[ \t]*(?:元|人|次|万|亿|千|百|%|‰|吨|个|件|户|台|辆|只|头|株|册|份|条|股|平方|公里|千米|米|克|"
                         r"美元|港元|欧元|日元|块|yuan|RMB|USD|CNY|kg|km|m2|people|times)", re.I)
_CURRENCY_BEFORE = re.compile(r"(?:[¥￥$€£]|人民币|RMB|USD|CNY)[ \t]*$", re.I)


def _quantity(view: str, m: re.Match) -> bool:
    """A number with a unit after it or a currency before it is an amount (18420774385元), not a phone."""
    return bool(_UNIT_AFTER.match(view, m.end()) or _CURRENCY_BEFORE.search(text_before(view, m.start(), 6)))


# --- the stage -------------------------------------------------------------------------

def settings_for(cfg: Pii, source: Source) -> tuple[bool, dict]:
    """(enabled, types) for one source: ``pii`` with ``sources.NAME.pii`` on top
    (the types it names, an explicit null included)."""
    over = source.pii
    enabled = cfg.enabled if over is None or over.enabled is None else over.enabled
    types = cfg.types.model_dump()
    if over is not None and over.types is not None:
        types.update(over.types.model_dump(exclude_unset=True))
    return enabled, types


class PiiDoFn(beam.DoFn):
    """``cfg``: the ``pii`` section; ``sources``: name -> ``schema.Source``."""

    def __init__(self, cfg: Pii, sources: dict[str, Source], ctx: StageContext = StageContext(STAGE)):
        self.cfg, self.sources, self.ctx = cfg, sources, ctx

    def setup(self):
        custom = self._custom = load_custom(self.cfg.custom)
        self._redactors = {}
        for name, src in self.sources.items():
            enabled, types = settings_for(self.cfg, src)
            self._redactors[name] = PiiRedactor(types, self.cfg.phone_regions, custom) if enabled else None

    def teardown(self):  # the custom types' child process, if one was started
        if getattr(self, "_custom", None):
            self._custom.close()

    def process(self, doc: Document):
        redactor = self._redactors.get(doc.source)
        if redactor is None:
            yield doc
            return
        try:
            text, counts = redactor.redact(doc.text)
        except CustomTimeout as exc:  # a user pattern or validator overran: this record, not the stage
            yield self.ctx.fail(doc, "pii_timeout", str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - never pass a document whose PII scan failed
            yield self.ctx.fail(doc, "pii_error", f"{type(exc).__name__}: {exc}")
            return
        if not counts:
            yield doc.replace(pii_counts={})
            return
        for t, n in counts.items():
            beam.metrics.Metrics.counter("mdfs.pii", f"{doc.source}.{t}").inc(n)
        yield doc.replace(text=text, pii_counts=counts)


class PiiFilter(beam.PTransform):
    def __init__(self, cfg: Pii, sources: dict[str, Source], excerpt_chars: int = 200):
        super().__init__()
        self.cfg, self.sources = cfg, sources
        self.ctx = StageContext(STAGE, excerpt_chars)

    def expand(self, docs):
        return apply_stage(docs, "Redact", PiiDoFn(self.cfg, self.sources, self.ctx))


def pii_runs(cfg: dict) -> bool:
    """The pii stage runs when it is on, or on for at least one source."""
    return any(settings_for(cfg.pii, src)[0] for src in cfg.sources.values())


class PiiStage(Stage):
    """Personal information replaced by placeholders (Chinese formats first)."""

    name = section = "pii"
    changes_text = True
    funnel_fields = {"pii_replaced": BY_NAME, "pii_documents": COUNT}

    def why_off(self, cfg):
        return None if pii_runs(cfg) else "disabled (pii.enabled: false)"

    def check(self, cfg) -> list:
        try:  # a validator that does not import is an error now, not in every worker
            load_custom(cfg.pii.custom)
        except Exception as exc:  # noqa: BLE001 - ImportError, AttributeError, ...
            return [f"pii.custom: {type(exc).__name__}: {exc}"]
        return []

    def transform(self, build: BuildContext) -> beam.PTransform:
        return PiiFilter(build.cfg.pii, build.cfg.sources, build.excerpt_chars)

    def kept_events(self, doc):
        if not doc.pii_counts:  # spans replaced, per type; documents that had any
            return []
        return [*(((doc.source, "pii_replaced", t), n) for t, n in doc.pii_counts.items()),
                ((doc.source, "pii_documents"), 1)]

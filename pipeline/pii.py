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

import datetime
import ipaddress
import re
from typing import TYPE_CHECKING, Iterable, Optional

import apache_beam as beam

from .pii_custom import CustomTimeout, load_custom  # noqa: F401 - load_custom: pii's API
from .records import Document
from .stage import StageContext, apply_stage

if TYPE_CHECKING:
    from .schema import Pii, Source

STAGE = "pii"
PLACEHOLDERS = {"email": "<EMAIL>", "ip": "<IP>", "id_number": "<ID_NUMBER>", "phone": "<PHONE>",
                "bank_card": "<BANK_CARD>", "account": "<ACCOUNT>"}
TYPES = tuple(PLACEHOLDERS)

# full-width ASCII (U+FF01..U+FF5E) -> ASCII, ideographic space -> space: same length, spans map back 1:1.
# The no-break and thin spaces (&nbsp; in HTML, what extraction keeps between digit groups of a form) and
# the Unicode hyphens separate digit groups like a space and a hyphen do.
_FULLWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
_FULLWIDTH.update({0x3000: 0x20, 0x00A0: 0x20, 0x2009: 0x20, 0x202F: 0x20, 0x2010: 0x2D, 0x2011: 0x2D})


_WIDE = re.compile("[\uff01-\uff5e\u3000\u00a0\u2009\u202f\u2010\u2011]")


def ascii_view(text: str) -> str:
    return text.translate(_FULLWIDTH) if _WIDE.search(text) else text


# --- validators ----------------------------------------------------------------------

# provinces, autonomous regions, municipalities (GB/T 2260 first two digits); 71/81/82 appear on
# residence permits for Taiwan, Hong Kong and Macao residents
_PROVINCES = {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52,
              53, 54, 61, 62, 63, 64, 65, 71, 81, 82}
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def _plausible_date(y: int, m: int, d: int) -> bool:
    if not 1900 <= y <= datetime.date.today().year:
        return False
    try:
        return datetime.date(y, m, d) <= datetime.date.today()
    except ValueError:
        return False


def valid_id18(s: str) -> bool:
    """GB 11643-1999: province, birth date, ISO 7064 MOD 11-2 check character."""
    if len(s) != 18 or not s[:17].isdigit() or int(s[:2]) not in _PROVINCES:
        return False
    if not _plausible_date(int(s[6:10]), int(s[10:12]), int(s[12:14])):
        return False
    total = sum(int(c) * w for c, w in zip(s[:17], _ID_WEIGHTS))
    return _ID_CHECK[total % 11] == s[17].upper()


def valid_id15(s: str) -> bool:
    """The pre-1999 form: province, 19YYMMDD birth date, 3-digit sequence (no check digit)."""
    return (len(s) == 15 and s.isdigit() and int(s[:2]) in _PROVINCES
            and _plausible_date(1900 + int(s[6:8]), int(s[8:10]), int(s[10:12])))


def luhn(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        n = int(c)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def card_issuer(d: str) -> Optional[str]:
    n = len(d)
    if d.startswith("62") and 16 <= n <= 19:
        return "unionpay"
    if d.startswith("4") and n in (13, 16, 19):
        return "visa"
    if (51 <= int(d[:2]) <= 55 or 2221 <= int(d[:4]) <= 2720) and n == 16:
        return "mastercard"
    if d[:2] in ("34", "37") and n == 15:
        return "amex"
    if 3528 <= int(d[:4]) <= 3589 and 16 <= n <= 19:
        return "jcb"
    if (d.startswith("6011") or d.startswith("65")) and 16 <= n <= 19:
        return "discover"
    return None


_MOBILE_PREFIX = re.compile(r"1(?:3\d|4[5-9]|5[0-35-9]|6[2567]|7[0-8]|8\d|9[0-35-9])")


# --- patterns (on the ASCII view) ---------------------------------------------------

# Patterns start with a literal or a character class (no leading look-behind), so that the regex
# engine skips ahead to candidate characters; what may not precede a match is checked in Python
# (``_free``).  This keeps the stage at a few per cent of extraction time.
_E = r"(?![0-9A-Za-z])"
EMAIL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,24}(?![A-Za-z0-9-])")
IPV4_RE = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?![0-9]|\.\d)")
IPV6_RE = re.compile(r"[0-9A-Fa-f:][0-9A-Fa-f:]{1,38}(?![0-9A-Fa-f:])")
_DIGIT_RUN = re.compile(r"\d+")
# every ACCOUNT_RE match starts with one of these (substring tests: far cheaper than the scan)
_ACCOUNT_WORDS = ("QQ", "qq", "Qq", "微信", "eChat", "echat", "VX", "vx", "Vx", "wx", "WX", "支付宝")
_IPV4_HINT = re.compile(r"\d\.\d")
ID18_RE = re.compile(r"\d{17}[\dXx]" + _E)
# grouped as forms and screenshots print them: region-birth date-sequence (6-8-4) or 3-3-8-4, one
# separator throughout (space, hyphen or dot; full-width ones and U+3000 arrive as ASCII in the view)
_G = r"(?: {1,2}|[\-.])"
ID18_GROUPED_RE = re.compile(r"\d\d\d(?:(" + _G + r")\d{3}\1\d{8}\1|\d{3}(" + _G + r")\d{8}\2)\d{3}[\dXx]" + _E)
ID15_RE = re.compile(r"\d{15}" + _E)
_SEP = r"(?: {1,2}|[\-.])?"
_MOBILE = r"1\d{2}" + _SEP + r"\d{4}" + _SEP + r"\d{4}(?![0-9])"
_CC = (r"\+86 {0,2}", r"\+86-", r"\(\+?86\) ?", r"0086[ \-]?", r"86[ \-]?")  # +86, (+86), 0086, 86
MOBILE_RE = re.compile("|".join(p + _MOBILE for p in _CC + ("",)))
# the forms added for grouped numbers take mainland area codes only: 010, 02X, 0[3-9]XX (no 00X, no 01X
# but 010), a subscriber number split 4 + 4 (only eight digits are printed split; UK numbers such as
# 0800 138 1016 are 4-3-4); an unsplit one keeps any 0 + 2-3 digits (0121 2025050 is a phone too).
# An extension after a hyphen, 转, 分机(号) or ext. is part of the number
_AREA = r"(?:10|2\d|[3-9]\d{2})"
_SUB = r"(?:\d{7,8}|\d{4}[ \-]\d{4})"
_EXT = r"(?:-\d{1,5}| ?(?:转分机|转|分机号?|[Ee]xt\.?|EXT\.?) ?:? ?\d{1,6})?(?![0-9])"
_LANDS = (r"\(0\d{2,3}\)(?:\s{1,2}|-)?\d{7,8}", r"0\d{2,3}[ \-]\d{7,8}",  # (0755) 8888..., 0755-8888...
          r"\(0" + _AREA + r"\)(?:\s{1,2}|-)?\d{4}[ \-]\d{4}", "0" + _AREA + r"[ \-]\d{4}[ \-]\d{4}")
# international form: +86 and the area code without its 0, optionally (0) or brackets: +86 10 6552 9988
_INTL = r"[ \-]?(?:\(0\) ?|\()?" + _AREA + r"\)?[ \-]?" + _SUB + _EXT
# every alternative starts with a literal, so the engine jumps between candidate characters
# instead of trying the whole pattern at every position (8x cheaper on real pages)
LANDLINE_RE = re.compile("|".join([r"\+86" + _INTL, "0086" + _INTL] + [
    p + land + _EXT for p in _CC + ("",) for land in _LANDS]))
LANDLINE_BARE_RE = re.compile(r"0\d{9,11}(?![0-9])")
HK_RE = re.compile(r"(?:\+|00)852[ \-]?[2-9]\d{3}[ \-]?\d{4}(?![0-9])")
TW_RE = re.compile(r"(?:(?:\+|00)886[ \-]?9\d{2}[ \-]?\d{3}[ \-]?\d{3}|09\d{2}[ \-]?\d{3}[ \-]?\d{3}"
                   r"|(?:\+|00)886[ \-]?[2-8][ \-]?\d{3,4}[ \-]?\d{4})(?![0-9])")
# card groupings, one separator throughout: 4-4-4-4 with an optional last group of 1-7 (4-4-4-4-3 for
# 19 digits; also 4-4-4-1..7 for 13-15), Amex 4-6-5, UnionPay 6-13; or one run of 13-19 digits.  The
# leading single \d lets the engine skip to digits (6x cheaper than a leading \d{4} alternation)
CARD_RE = re.compile(r"\d(?:\d{3}(?:(" + _G + r")\d{4}\1\d{4}(?:\1\d{4})?(?:\1\d{1,7})?|(" + _G + r")\d{6}\2\d{5})"
                     r"|\d{5}(" + _G + r")\d{13}|\d{12,18})(?![0-9])")
ACCOUNT_RE = re.compile(
    r"(?:QQ|qq|Qq)(?:号码?|号|账号|帐号)?\s*[:：]?\s*(?P<qq>[1-9]\d{4,11})(?![0-9])"
    r"|(?:微信号?|微信|[Ww]e[Cc]hat|VX|vx|Vx|wx|WX)\s*(?:号)?\s*[:：]?\s*(?P<wx>[A-Za-z][-_A-Za-z0-9]{5,19}|1\d{10})"
    r"(?![-_A-Za-z0-9])"
    r"|支付宝\s*(?:账号|帐号|账户)?\s*[:：]?\s*(?P<ali>[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
    r"|1\d{10})(?![0-9A-Za-z])")

_VERSION_BEFORE = re.compile(r"(?:version|ver\.?|v|版本|版本号|build)\s*[:：]?\s*$", re.I)
_ID_CONTEXT = re.compile(r"身份证|证件|公民身份|居民身份|\bID\b|ID[ -]?(?:card|no)", re.I)
# English words from their start: "tel" in "dargestellt", "call" in "recall" are no phone context
# (but "calls", "calling" are)
_PHONE_CONTEXT = re.compile(r"电话|手机|联系|致电|热线|座机|传真|(?<![A-Za-z])(?:tel|phone|fax|mobile|call)", re.I)
_CARD_CONTEXT = re.compile(r"卡号|银行卡|信用卡|借记卡|储蓄卡|账号|帐号|card|visa|mastercard|银联", re.I)
# the receipt fields next to the card number (POS slips print 凭证号, 参考号, 批次号, 授权码, 交易号)
_NOT_CARD_CONTEXT = re.compile(r"订单|单号|运单|快递|物流|编号|流水|凭证|参考号|批次|授权码|交易号|终端号|商户号|ISBN|order|tracking"
                               r"|invoice|serial|reference|no\.", re.I)
# the label of a number that is not a phone right before it (订单号：0571 2345 6789); right before only, as
# "订单问题请拨打 (010) 6552 9988" is a phone (and 手机号码 is a phone's label)
_NOT_PHONE_LABEL = re.compile(r"(?:单号|编号|流水号|发票(?:代码|号码|号)?|校验码|ISBN|order|tracking|invoice|serial)"
                              r"(?: ?(?:no\.?|number|#))?\s?[:：]?\s?$", re.I)


_DIGITS = "0123456789"
_ALNUM = _DIGITS + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_HEX = _DIGITS + "ABCDEFabcdef"
_EMAIL_CHARS = _ALNUM + "._%+-"


_IPV6_CHARS = frozenset(_HEX + ":")


def _ipv6_runs(view: str):
    """(start, end) of each maximal run of hex digits and colons that holds a
    colon and is 2-39 characters long: the IPv6 candidates (what ``IPV6_RE``
    matches where the character before is not one of them), found from the
    colons instead of a scan of every position (English words are hex runs)."""
    n, i = len(view), view.find(":")
    while i != -1:
        start, end = i, i + 1
        while start > 0 and view[start - 1] in _IPV6_CHARS:
            start -= 1
        while end < n and view[end] in _IPV6_CHARS:
            end += 1
        if 2 <= end - start <= 39:
            yield start, end
        i = view.find(":", end)


def _free(view: str, start: int, forbidden: str) -> bool:
    """The character before ``start`` is not one that would make the match part of a longer token."""
    return start == 0 or view[start - 1] not in forbidden


def _before(view: str, start: int, n: int = 16) -> str:
    return view[max(0, start - n):start]


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
                if _free(view, m.start(), _EMAIL_CHARS):
                    add(m.start(), m.end(), "email", 0)
        # the longest run of digits: a detector whose every match holds a longer run is
        # not run at all (most pages have no long numbers; each scan costs ~0.1 ms per page)
        runs = [len(r) for r in _DIGIT_RUN.findall(view)]
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
                if not _free(view, m.start(), _ALNUM):  # SF6212...: a code with letters, not a card
                    continue
                if self._is_card(view, m.start(), m.group()):
                    add(m.start(), m.end(), "bank_card", 2)
                elif m.group() != (d := _digits(m.group())) and 13 <= len(d) <= 19:
                    blocked.append(m.span())
        if digits and "phone" in self.types:
            for s, e in self._phones(view, run, runs):
                if not any(s < be and bs < e for bs, be in blocked):
                    add(s, e, "phone", 3)
        if "account" in self.types and any(k in view for k in _ACCOUNT_WORDS):
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
                if _free(view, m.start(), _ALNUM) and valid_id18(m.group().upper()):
                    yield m.span()
        if 8 in runs:
            for m in ID18_GROUPED_RE.finditer(view):
                if _free(view, m.start(), _ALNUM):
                    if valid_id18(_digits(m.group()).upper()):
                        yield m.span()
                    else:
                        blocked.append(m.span())
        if run >= 15:
            for m in ID15_RE.finditer(view):
                if (_free(view, m.start(), _ALNUM) and valid_id15(m.group())
                        and _ID_CONTEXT.search(_before(view, m.start(), 20))):
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
        before = _before(view, start, 12)
        if _NOT_CARD_CONTEXT.search(before):
            return False
        grouped = raw != d
        return grouped or bool(_CARD_CONTEXT.search(before)) or issuer == "unionpay"

    def _phones(self, view: str, run: int, runs: list[int]):
        """Phone numbers; ``run``: the longest run of digits in ``view``, ``runs``: the lengths of all."""
        for m in MOBILE_RE.finditer(view) if run >= 4 else ():
            number = re.sub(r"\D", "", m.group())[-11:]
            if (_free(view, m.start(), _DIGITS + "+") and _MOBILE_PREFIX.match(number)
                    and not _glued_group(view, m) and not _quantity(view, m) and not _labelled(view, m)):
                yield m.start(), m.end()
        # an unsplit subscriber number is a run of 7-8, a split one two runs of exactly four, or four
        # glued to the area code of an international number (+86 217388-3310: a run of six)
        for m in LANDLINE_RE.finditer(view) if run >= 6 or runs.count(4) >= 2 else ():
            if _free(view, m.start(), _DIGITS) and not _labelled(view, m):
                yield m.start(), m.end()
        for m in LANDLINE_BARE_RE.finditer(view) if run >= 10 else ():
            if (len(m.group()) in (11, 12) and _free(view, m.start(), _DIGITS)
                    and _PHONE_CONTEXT.search(_before(view, m.start(), 12)) and not _labelled(view, m)):
                yield m.start(), m.end()
        if "hk" in self.phone_regions:
            for m in HK_RE.finditer(view):
                yield m.start(), m.end()
        if "tw" in self.phone_regions:
            for m in TW_RE.finditer(view):
                yield m.start(), m.end()

    def _ips(self, view: str):
        for m in IPV4_RE.finditer(view) if _IPV4_HINT.search(view) else ():
            text = m.group()
            if not _free(view, m.start(), _DIGITS + "."):
                continue
            if any(len(o) > 1 and o.startswith("0") for o in text.split(".")):
                continue  # leading zeros: a version or a serial, not an address
            if _VERSION_BEFORE.search(_before(view, m.start(), 12)):
                continue
            try:
                if ipaddress.IPv4Address(text).is_global:
                    yield m.start(), m.end()
            except ValueError:
                continue
        for start, end in _ipv6_runs(view):
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
    return bool(_NOT_PHONE_LABEL.search(_before(view, m.start(), 14)))


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
    return bool(_UNIT_AFTER.match(view, m.end()) or _CURRENCY_BEFORE.search(_before(view, m.start(), 6)))


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

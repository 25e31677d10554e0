"""The PII detectors: a same-length ASCII view of the text, one pattern per
entity and the validators that confirm a candidate (resident ID checksums,
Luhn and card issuers, mainland mobile prefixes, the context words that make a
bare number a phone or a card).  ``pii.PiiRedactor`` runs them; pii.py's
docstring has the table of what each entity accepts."""
from __future__ import annotations

import datetime
import re
from typing import Optional


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


MOBILE_PREFIX = re.compile(r"1(?:3\d|4[5-9]|5[0-35-9]|6[2567]|7[0-8]|8\d|9[0-35-9])")


# --- patterns (on the ASCII view) ---------------------------------------------------

# Patterns start with a literal or a character class (no leading look-behind), so that the regex
# engine skips ahead to candidate characters; what may not precede a match is checked in Python
# (``starts_token``).  This keeps the stage at a few per cent of extraction time.
_E = r"(?![0-9A-Za-z])"
EMAIL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,24}(?![A-Za-z0-9-])")
IPV4_RE = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?![0-9]|\.\d)")
IPV6_RE = re.compile(r"[0-9A-Fa-f:][0-9A-Fa-f:]{1,38}(?![0-9A-Fa-f:])")
DIGIT_RUN = re.compile(r"\d+")
# every ACCOUNT_RE match starts with one of these (substring tests: far cheaper than the scan)
ACCOUNT_WORDS = ("QQ", "qq", "Qq", "微信", "eChat", "echat", "VX", "vx", "Vx", "wx", "WX", "支付宝")
IPV4_HINT = re.compile(r"\d\.\d")
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

VERSION_BEFORE = re.compile(r"(?:version|ver\.?|v|版本|版本号|build)\s*[:：]?\s*$", re.I)
ID_CONTEXT = re.compile(r"身份证|证件|公民身份|居民身份|\bID\b|ID[ -]?(?:card|no)", re.I)
# English words from their start: "tel" in "dargestellt", "call" in "recall" are no phone context
# (but "calls", "calling" are)
PHONE_CONTEXT = re.compile(r"电话|手机|联系|致电|热线|座机|传真|(?<![A-Za-z])(?:tel|phone|fax|mobile|call)", re.I)
CARD_CONTEXT = re.compile(r"卡号|银行卡|信用卡|借记卡|储蓄卡|账号|帐号|card|visa|mastercard|银联", re.I)
# the receipt fields next to the card number (POS slips print 凭证号, 参考号, 批次号, 授权码, 交易号)
NOT_CARD_CONTEXT = re.compile(r"订单|单号|运单|快递|物流|编号|流水|凭证|参考号|批次|授权码|交易号|终端号|商户号|ISBN|order|tracking"
                               r"|invoice|serial|reference|no\.", re.I)
# the label of a number that is not a phone right before it (订单号：0571 2345 6789); right before only, as
# "订单问题请拨打 (010) 6552 9988" is a phone (and 手机号码 is a phone's label)
NOT_PHONE_LABEL = re.compile(r"(?:单号|编号|流水号|发票(?:代码|号码|号)?|校验码|ISBN|order|tracking|invoice|serial)"
                              r"(?: ?(?:no\.?|number|#))?\s?[:：]?\s?$", re.I)


DIGITS = "0123456789"
ALNUM = DIGITS + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
HEX = DIGITS + "ABCDEFabcdef"
EMAIL_CHARS = ALNUM + "._%+-"


_IPV6_CHARS = frozenset(HEX + ":")


def ipv6_runs(view: str):
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


def starts_token(view: str, start: int, forbidden: str) -> bool:
    """The character before ``start`` is not one that would make the match part of a longer token."""
    return start == 0 or view[start - 1] not in forbidden


def text_before(view: str, start: int, n: int = 16) -> str:
    return view[max(0, start - n):start]

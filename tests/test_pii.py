"""PII redaction: a planted set with known answers (valid entities in real-looking
Chinese and English sentences, and at least as many decoys), plus the rules
one by one."""
from __future__ import annotations

import random

import pytest

from mdfs.pipeline.pii import PLACEHOLDERS, PiiRedactor, ascii_view, luhn, valid_id15, valid_id18

ALL_ON = {t: True for t in PLACEHOLDERS}


def make_id18(rnd: random.Random) -> str:
    region = rnd.choice(["110101", "310104", "440305", "510107", "330106", "420111"])
    y, m, d = rnd.randint(1950, 2005), rnd.randint(1, 12), rnd.randint(1, 28)
    body = f"{region}{y:04d}{m:02d}{d:02d}{rnd.randint(0, 999):03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, weights)) % 11]


def with_luhn(prefix: str, length: int, rnd: random.Random) -> str:
    body = prefix + "".join(str(rnd.randint(0, 9)) for _ in range(length - len(prefix) - 1))
    for check in "0123456789":
        if luhn(body + check):
            return body + check
    raise AssertionError


def mobile(rnd: random.Random) -> str:
    return rnd.choice(["138", "139", "150", "186", "177", "199", "135", "147"]) + "".join(
        str(rnd.randint(0, 9)) for _ in range(8))


FULLWIDTH = str.maketrans({chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)})


def planted(n: int = 60, seed: int = 11):
    """[(text, expected {type: count}, decoy count)] and the decoy sentences."""
    rnd = random.Random(seed)
    pos, neg = [], []
    for i in range(n):
        idn = make_id18(rnd)
        m = mobile(rnd)
        prefix = rnd.choice(["622202", "621700", "4367", "5213"])
        card = with_luhn(prefix, rnd.choice([16, 19]) if i % 2 and prefix != "5213" else 16, rnd)  # Mastercard: 16
        grouped = " ".join(card[k:k + 4] for k in range(0, len(card), 4))
        email = f"user{i}.name@{rnd.choice(['example.com', 'qq.com', '163.com', 'mail.sina.com.cn'])}"
        ip = f"{rnd.randint(11, 99)}.{rnd.randint(1, 254)}.{rnd.randint(1, 254)}.{rnd.randint(1, 254)}"
        phone_forms = [m, f"+86 {m[:3]} {m[3:7]} {m[7:]}", f"{m[:3]}-{m[3:7]}-{m[7:]}", f"0086{m}",
                       f"{m[:3]}-{m[3:7]}-{m[7:]}".translate(FULLWIDTH)]
        pos += [
            (f"如有疑问请联系张先生，手机{phone_forms[i % 5]}，工作日9点到18点。", {"phone": 1}),
            (f"申请人身份证号码：{idn if i % 3 else idn.translate(FULLWIDTH)}，请核对后签字。", {"id_number": 1}),
            (f"退款将打入您尾号对应的银行卡{grouped if i % 2 else card}，预计三个工作日到账。", {"bank_card": 1}),
            (f"Please send the signed form to {email} before Friday.", {"email": 1}),
            (f"登录异常：来自 {ip} 的访问已被拦截。", {"ip": 1}),
            (f"加我微信{('wxid_' + str(rnd.randint(10000, 99999)))}或QQ号{rnd.randint(10000, 999999999)}详聊。",
             {"account": 2}),
            (f"北京办公室电话：010-{rnd.randint(60000000, 89999999)}，传真另见官网。", {"phone": 1}),
        ]
        bad_id = idn[:17] + ("0" if idn[17] != "0" else "1")
        bad_card = card[:-1] + str((int(card[-1]) + 1) % 10)
        neg += [
            f"订单号{rnd.randint(10**15, 10**16 - 1)}已发货，请耐心等待。",
            f"证件号{bad_id}校验失败，请重新输入。",
            f"卡号{bad_card}无效。",
            f"ISBN 978-7-{rnd.randint(100, 999)}-{rnd.randint(10000, 99999)}-{rnd.randint(0, 9)}，定价￥{rnd.randint(20, 99)}.00元。",
            f"ISBN {with_luhn('978', 13, rnd)}",
            f"会议定于{rnd.randint(2000, 2024)}年{rnd.randint(1, 12)}月{rnd.randint(1, 28)}日召开，"
            f"日期编码{rnd.randint(2000, 2024)}{rnd.randint(10, 12)}{rnd.randint(10, 28)}。",
            f"全年客运量达{rnd.randint(1, 9)},{rnd.randint(100, 999)},{rnd.randint(100, 999)},{rnd.randint(100, 999)}人次。",
            f"运单号 SF{rnd.randint(10**12, 10**13 - 1)}，快递单号{rnd.randint(10**11, 10**12 - 1)}。",
            f"软件版本 {rnd.randint(1, 9)}.{rnd.randint(0, 20)}.{rnd.randint(0, 99)}.{rnd.randint(0, 999)} 已发布。",
            f"内网地址 192.168.{rnd.randint(0, 255)}.{rnd.randint(1, 254)} 与 10.0.{rnd.randint(0, 255)}.1 不受影响。",
            f"售价{rnd.randint(1000, 9999)}元，折后{rnd.randint(100, 999)}.{rnd.randint(10, 99)}元。",
            f"比赛在{rnd.randint(10, 23)}:{rnd.randint(10, 59)}:{rnd.randint(10, 59)}开始，"
            f"详见 https://www.example.com/p/{rnd.randint(10**8, 10**9)}.html",
            f"流水号{with_luhn('6', 16, rnd)}请妥善保存。",
            f"统计数据：{rnd.randint(10**10, 10**11 - 1)}元的总投资中，{rnd.randint(10, 99)}%来自社会资本。",
        ]
    return pos, neg


@pytest.fixture(scope="module")
def redactor():
    return PiiRedactor(ALL_ON)


def test_recall_per_type_and_decoys_on_the_planted_set(redactor):
    pos, neg = planted()
    assert len(neg) >= len(pos)
    found, expected = {}, {}
    for text, want in pos:
        _, counts = redactor.redact(text)
        for t, n in want.items():
            expected[t] = expected.get(t, 0) + n
            found[t] = found.get(t, 0) + min(counts.get(t, 0), n)
    recall = {t: found.get(t, 0) / n for t, n in expected.items()}
    assert all(r >= 0.98 for r in recall.values()), recall
    altered = [t for t in neg if redactor.redact(t)[0] != t]
    assert len(altered) / len(neg) <= 0.01, altered[:5]


def test_placeholders_and_counts_never_the_values(redactor):
    text = "张三，身份证11010119900307803X，手机138-0013-8000，邮箱zhang.san@example.com。"
    out, counts = redactor.redact(text)
    assert out == "张三，身份证<ID_NUMBER>，手机<PHONE>，邮箱<EMAIL>。"
    assert counts == {"id_number": 1, "phone": 1, "email": 1}


def test_id_numbers_are_validated():
    assert valid_id18("11010119900307803X") and valid_id18("11010119900307803x".upper())
    assert not valid_id18("110101199003078031")  # check character
    assert not valid_id18("11010119901307803X")  # month 13
    assert not valid_id18("99010119900307803X")  # no province 99
    assert valid_id15("110101900307803") and not valid_id15("110101901307803")
    r = PiiRedactor(ALL_ON)
    assert r.redact("身份证号 110101900307803")[1] == {"id_number": 1}
    assert r.redact("货号 110101900307803")[1] == {}  # 15 digits without an ID context word


def test_full_width_forms_are_found():
    r = PiiRedactor(ALL_ON)
    assert ascii_view("１３８－００１３") == "138-0013"
    out, counts = r.redact("电话：１３８－００１３－８０００")
    assert out == "电话：<PHONE>" and counts == {"phone": 1}


def test_bank_cards_need_luhn_issuer_and_grouping_or_context():
    r = PiiRedactor(ALL_ON)
    card = "6222021234567890128"  # UnionPay, Luhn-valid
    assert luhn(card)
    assert r.redact(f"卡号{card}")[1] == {"bank_card": 1}
    assert r.redact("4111 1111 1111 1111")[1] == {"bank_card": 1}  # grouped Visa
    assert r.redact("编号4111111111111111")[1] == {}  # no grouping, an order/serial word before it
    assert r.redact("9781234567897")[1] == {}  # ISBN-13
    assert r.redact("卡号 4111 1111 1111 1112")[1] == {}  # Luhn fails


def test_ips_public_only_and_not_versions():
    r = PiiRedactor(ALL_ON)
    assert r.redact("来自 8.8.8.8 的请求")[1] == {"ip": 1}
    assert r.redact("网关 192.168.1.1，本机 127.0.0.1")[1] == {}
    assert r.redact("version 2.10.3.4 released")[1] == {}
    assert r.redact("IPv6 2001:4860:4860::8888 与 ::1")[1] == {"ip": 1}
    assert r.redact("会议 12:30:45 开始")[1] == {}


def test_types_can_be_switched_off_and_regions_added():
    only_email = PiiRedactor({**{t: False for t in PLACEHOLDERS}, "email": True})
    assert only_email.redact("a@b.com 13800138000")[1] == {"email": 1}
    assert PiiRedactor(ALL_ON).redact("香港 +852 2345 6789")[1] == {}
    assert PiiRedactor(ALL_ON, ["cn", "hk", "tw"]).redact("香港 +852 2345 6789，台湾 0912-345-678")[1] == {"phone": 2}


def test_custom_types_with_a_validator():
    from mdfs.pipeline.pii import load_custom

    custom = load_custom([{"type": "employee_id", "pattern": r"EMP-\d{6}", "validator": "operator:truth"}])
    out, counts = PiiRedactor(ALL_ON, custom=custom).redact("工号 EMP-123456 已登记")
    assert out == "工号 <EMPLOYEE_ID> 已登记" and counts == {"employee_id": 1}


def test_the_stage_in_the_job_counts_per_type_and_respects_source_overrides(tmp_path):
    import gzip
    import json

    from helpers import run_job

    body = ("国家统计局今天发布了最新的经济数据，显示今年前三个季度国内生产总值同比增长百分之五。\n"
            "其中，最终消费支出对经济增长的贡献率继续提高，投资结构也在持续优化。\n"
            "分行业看，高技术制造业增加值增长较快，新能源汽车和集成电路产量保持两位数增长。\n"
            "从就业情况看，城镇调查失业率总体稳定，重点群体就业得到较好保障。\n"
            "专家认为，下一阶段应继续扩大国内需求，稳定市场预期，推动经济持续回升向好。\n")
    rows = [{"id": f"d{i}", "text": body + f"如需采访请联系王女士，手机13800138{i:03d}，或发邮件至press{i}@example.com。\n"
             + f"本报记者李明第{i}次报道。"} for i in range(3)]
    for name in ("a", "b"):
        with gzip.open(tmp_path / f"{name}.jsonl.gz", "wt", encoding="utf-8") as fh:
            fh.write("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    res = run_job(tmp_path / "out", sources=[f"a={tmp_path}/a.jsonl.gz", f"b={tmp_path}/b.jsonl.gz"],
                  sets=["near_dedup.enabled=false", "exact_dedup.enabled=false", "sources.b.pii.types.email=false"])
    f = res["funnel"]["sources"]
    assert f["a"]["pii_replaced"] == {"phone": 3, "email": 3} and f["a"]["pii_documents"] == 3
    assert f["b"]["pii_replaced"] == {"phone": 3}
    kept = {(r["source"], r["id"]): r for r in res["kept"]}
    a0 = kept[("a", "d0")]
    assert "<PHONE>" in a0["text"] and "<EMAIL>" in a0["text"] and "13800138000" not in a0["text"]
    assert sorted((c["type"], c["count"]) for c in a0["pii_counts"]) == [("email", 1), ("phone", 1)]
    assert "press0@example.com" in kept[("b", "d0")]["text"]


def test_config_refuses_bad_custom_types():
    from mdfs.pipeline.config import load_config

    with pytest.raises(ValueError, match="not a valid regular expression"):
        load_config(sets=["pii.custom=[{type: x, pattern: '(unclosed'}]"])
    with pytest.raises(ValueError, match="already a type"):
        load_config(sets=["pii.custom=[{type: email, pattern: 'x'}]"])
    with pytest.raises(ValueError, match="unknown key sources.s.pii.types.emial"):
        load_config(sets=["sources.s.paths=[x.jsonl]", "sources.s.pii.types.emial=false"])


def test_detector_gates_never_skip_a_match():
    """``spans`` skips a detector when the page cannot hold a match (its longest
    digit run is too short, no account keyword, no "d.d"); every match of each
    pattern on digit-heavy random strings holds what its gate asks for, and the
    IPv6 candidates found from the colons are exactly the pattern's matches
    that start a run."""
    import re

    from mdfs.pipeline import pii

    def longest_run(s):
        return max((len(r) for r in re.findall(r"\d+", s)), default=0)

    rnd = random.Random(7)
    alphabet = "0123456789" * 4 + " -.+():：xXabcdefABCDEF@qQ微信号wWvV支付宝"
    texts = ["".join(rnd.choice(alphabet) for _ in range(rnd.randrange(5, 80))) for _ in range(6000)]
    texts += [rnd.choice(alphabet) + ".".join(str(rnd.randrange(10 ** rnd.randrange(1, 5))) for _ in range(4))
              + rnd.choice(alphabet) for _ in range(300)]  # dotted quads, some too long
    texts += ["+886 912 345 678", "0086 138-1234-5678", "(010)62345678-123", "6222 0212 3456 7890 123",
              "QQ号: 123456789", "WeChat: wxid_ab12cd", "支付宝账号 13812345678", "fe80::1:2:3", "2001:db8::8a2e:370:7334"]
    gates = [(pii.ID18_RE, 17), (pii.ID15_RE, 15), (pii.MOBILE_RE, 4), (pii.LANDLINE_RE, 7),
             (pii.LANDLINE_BARE_RE, 10)]
    seen = dict.fromkeys(["runs", "card", "account", "ipv4", "ipv6"], 0)
    for t in texts:
        for pattern, least in gates:
            for m in pattern.finditer(t):
                assert longest_run(m.group()) >= least, (pattern.pattern, m.group())
                seen["runs"] += 1
        for m in pii.CARD_RE.finditer(t):
            runs = [len(r) for r in re.findall(r"\d+", m.group())]
            assert max(runs) >= 13 or sum(n >= 4 for n in runs) >= 3, m.group()
            seen["card"] += 1
        for m in pii.ACCOUNT_RE.finditer(t):
            assert any(k in m.group() for k in pii._ACCOUNT_WORDS), m.group()
            seen["account"] += 1
        for m in pii.IPV4_RE.finditer(t):
            assert re.search(r"\d\.\d", m.group())
            seen["ipv4"] += 1
        expected = [(m.start(), m.end()) for m in pii.IPV6_RE.finditer(t)
                    if pii._free(t, m.start(), pii._HEX + ":") and ":" in m.group()]
        assert list(pii._ipv6_runs(t)) == expected, t
        seen["ipv6"] += len(expected)
    assert min(seen.values()) >= 5, seen  # the strings exercise every gate

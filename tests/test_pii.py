"""PII redaction: a planted set with known answers (valid entities in real-looking
Chinese and English sentences, and at least as many decoys), plus the rules
one by one."""
from __future__ import annotations

import random

import pytest

from mdfs.pipeline.stages.pii import PLACEHOLDERS, PiiRedactor, ascii_view, luhn, valid_id15, valid_id18

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


# separators between digit groups as forms, receipts and chat messages print them; U+3000 is the
# ideographic space, U+00A0 what &nbsp; becomes; each also in full-width digits (and ．－)
SEPARATORS = (" ", "-", ".", "\u3000", "\u00a0", "  ")
SEPARATOR_NAMES = dict(zip(SEPARATORS, ("space", "hyphen", "dot", "U+3000", "no-break space", "two spaces")))


def group(s: str, sizes, sep: str, wide: bool = False) -> str:
    parts, k = [], 0
    for n in sizes:
        parts.append(s[k:k + n])
        k += n
    assert k == len(s), (s, sizes)
    out = sep.join(parts)
    return out.translate(FULLWIDTH) if wide else out


def landline(rnd: random.Random) -> tuple[str, str]:
    area = rnd.choice(["010", "021", "020", "028", "023", "0755", "0571", "0512", "0931"])
    return area, str(rnd.randint(2, 8)) + "".join(str(rnd.randint(0, 9)) for _ in range(7))


def planted_grouped(n: int = 40, seed: int = 13):
    """Grouped forms: [(text, redacted text, type, form, style)] and decoys [(text, class)] in the same
    groupings; style: the round's separator and digit width (IDs, cards and the last phone form use it).

    Every round writes each ID grouping (6-8-4, 3-3-8-4), card grouping (4-4-4-4, 4-4-4-4-3,
    6-13) and phone form once, with the round's separator and digit width, and one decoy of each
    class: grouped IDs and cards whose check digit or Luhn sum fails, grouped order and tracking
    numbers, grouped dates and times, invoice codes, numbers and check codes, ISBNs with spaces,
    amounts with thousands separators, phone-shaped numbers with no such area code or mobile prefix,
    the other numbers of a card-payment slip."""
    rnd = random.Random(seed)
    pos, neg = [], []

    def put(templates, value, t, form):  # (text, the text as redacted: the whole value is the placeholder)
        template = rnd.choice(templates)
        pos.append((template.format(value), template.format(PLACEHOLDERS[t]), t, form, style))

    for i in range(n):
        sep, wide = SEPARATORS[i % len(SEPARATORS)], bool((i // len(SEPARATORS)) % 2)
        style = f"{SEPARATOR_NAMES[sep]}, {'full' if wide else 'half'}-width"  # full width: digits, － and ．
        idn = make_id18(rnd)
        for sizes in ((6, 8, 4), (3, 3, 8, 4)):
            g = group(idn, sizes, sep, wide)
            form = "-".join(map(str, sizes))
            put(["姓名：王芳  身份证号：{}  性别：女", "证件号码 {}", "我的身份证是{}，你帮我填一下表",
                 "{}\n有效期限 2015.03.01-2035.03.01"], g, "id_number", f"id {form}")
            bad = idn[:17] + ("0" if idn[17] != "0" else "1")
            neg.append((f"证件号码 {group(bad, sizes, sep, wide)}（校验位错误）", "id check digit fails"))
        cards = [(with_luhn(rnd.choice(["622202", "621700", "4367", "5213"]), 16, rnd), (4, 4, 4, 4)),
                 (with_luhn(rnd.choice(["622202", "621700", "4367"]), 19, rnd), (4, 4, 4, 4, 3)),
                 (with_luhn(rnd.choice(["622202", "621700", "622848"]), 19, rnd), (6, 13))]
        for card, sizes in cards:
            g = group(card, sizes, sep, wide)
            put(["收款账号：{}（工商银行）", "转到这张卡 {} 就行", "Card number: {}", "银行卡号\n{}"], g, "bank_card",
                "card " + "-".join(map(str, sizes)))
            bad = card[:-1] + str((int(card[-1]) + 1) % 10)
            neg.append((f"卡号 {group(bad, sizes, sep, wide)} 校验失败", "card Luhn fails"))
        area, sub = landline(rnd)
        m = mobile(rnd)
        phones = {
            "phone (area) 4 4": f"({area}) {sub[:4]} {sub[4:]}",
            "phone （area）full-width brackets": f"（{area}）{sub[:4]} {sub[4:]}",
            "phone area-4-4 转 ext": f"{area}-{sub[:4]}-{sub[4:]} 转 {rnd.randint(1, 999)}",
            "phone area 4 4 分机 ext": f"{area} {sub[:4]} {sub[4:]} 分机 {rnd.randint(1, 9999)}",
            "phone (area) ext.": f"({area}) {sub} ext. {rnd.randint(1, 99)}",
            "phone +86 area 4 4": f"+86 {area[1:]} {sub[:4]} {sub[4:]}",
            "phone +86 (0)area": f"+86 (0){area[1:]} {sub}",
            "phone +86 3 4 4": f"+86 {m[:3]} {m[3:7]} {m[7:]}",
            "phone (+86) 3-4-4": f"(+86) {m[:3]}-{m[3:7]}-{m[7:]}",
            "phone +86 mobile, round's separator": "+86 " + group(m, (3, 4, 4), sep if sep != "." else " ", wide),
        }
        for form, number in phones.items():
            put(["联系电话：{}", "客服热线 {}，工作日9:00-18:00", "有事打我电话 {}", "Tel: {}"], number, "phone", form)
        y, mo, d = rnd.randint(2000, 2024), rnd.randint(1, 12), rnd.randint(1, 28)
        hh, mm, ss = rnd.randint(0, 23), rnd.randint(0, 59), rnd.randint(0, 59)
        order = with_luhn(rnd.choice(["622202", "4367", "5213"]), 16, rnd)
        oa, osub = landline(rnd)  # an order number shaped like a landline
        neg += [
            (f"订单号：{group(order, (4, 4, 4, 4), sep, wide)}", "grouped order number"),
            (f"订单编号 {group(with_luhn('622202', 19, rnd), (6, 13), sep, wide)}", "grouped order number"),
            (f"订单号：{group(oa + osub, (len(oa), 4, 4), sep, wide)}", "grouped order number"),
            (f"快递单号 {group(mobile(rnd), (3, 4, 4), sep, wide)}", "grouped tracking number"),
            (f"SF{with_luhn('62', 16, rnd)} 已签收", "grouped tracking number"),
            (f"凭证号 {group(with_luhn('4', 16, rnd), (4, 4, 4, 4), sep, wide)} 参考号 {with_luhn('62', 16, rnd)} "
             f"授权码 {rnd.randint(100000, 999999)}", "POS receipt fields"),
            (f"快递单号：SF {group(str(rnd.randint(10**11, 10**12 - 1)), (4, 4, 4), sep, wide)}", "grouped tracking number"),
            (f"物流单号 YT {group(with_luhn('4', 16, rnd), (4, 4, 4, 4), sep, wide)}", "grouped tracking number"),
            (f"{y:04d}{sep}{mo:02d}{sep}{d:02d} {hh:02d}:{mm:02d}:{ss:02d}", "grouped date and time"),
            (f"日期 {y:04d} {mo:02d}{d:02d} 时间 {hh:02d}{mm:02d} 第{y}{mo:02d}{d:02d}{rnd.randint(1, 99):03d}期",
             "grouped date and time"),
            (f"发票代码：0{rnd.randint(10**10, 10**11 - 1)} 发票号码：{rnd.randint(0, 10**8 - 1):08d}", "invoice number"),
            (f"发票号码 2{rnd.randint(10**18, 10**19 - 1)} 校验码 "
             + " ".join(f"{rnd.randint(0, 99999):05d}" for _ in range(4)), "invoice number"),
            (f"ISBN {group(with_luhn('9787', 13, rnd), (3, 1, 3, 5, 1), ' ')}，定价 {rnd.randint(20, 99)}.00 元", "ISBN with spaces"),
            (f"ISBN {group(with_luhn('978', 13, rnd), (4, 4, 4, 1), ' ')}", "ISBN with spaces"),
            (f"合计：¥{rnd.randint(1, 9)},{rnd.randint(100, 999)},{rnd.randint(100, 999)},{rnd.randint(100, 999)}.{rnd.randint(10, 99)}",
             "amount with thousands separators"),
            (f"营业收入 1 {rnd.randint(100, 999)} {rnd.randint(100, 999)} {rnd.randint(100, 999)} 元".translate(FULLWIDTH if wide else {}),
             "amount with thousands separators"),
            (("当期开出的奖号为：红球 " + sep.join(f"{b:02d}" for b in sorted(rnd.sample(range(1, 34), 6)))
              + f"；蓝球 {rnd.randint(1, 16):02d}").translate(FULLWIDTH if wide else {}), "lottery draw (two-digit groups)"),
            (f"电话 (012) {rnd.randint(1000, 9999)} {rnd.randint(1000, 9999)}，手机 +86 12{rnd.randint(0, 9)} "
             f"{rnd.randint(1000, 9999)} {rnd.randint(1000, 9999)}", "phone with no such area code or prefix"),
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


def test_grouped_forms_recall_and_decoys_in_the_same_groupings(redactor):
    """Every grouping, separator and digit width is replaced whole (extension included) and nothing
    else in the sentence changes; no decoy of any class is altered."""
    pos, neg = planted_grouped()
    forms = {form for _, _, _, form, _ in pos}
    assert len({style for *_, style in pos}) == 2 * len(SEPARATORS)
    assert len(forms) == 15 and {c for _, c in neg} >= {
        "id check digit fails", "card Luhn fails", "grouped order number", "grouped tracking number",
        "grouped date and time", "invoice number", "ISBN with spaces", "amount with thousands separators",
        "POS receipt fields"}
    missed = [(text, redactor.redact(text)[0]) for text, want, *_ in pos if redactor.redact(text)[0] != want]
    assert not missed, missed[:5]
    altered = [(text, c, redactor.redact(text)[0]) for text, c in neg if redactor.redact(text)[0] != text]
    assert not altered, altered[:5]


@pytest.mark.parametrize("text, want", [
    ("身份证号：110101 19900307 803X", "身份证号：<ID_NUMBER>"),
    ("身份证号：110-101-19900307-803X", "身份证号：<ID_NUMBER>"),
    ("证件号 １１０１０１\u3000１９９００３０７\u3000８０３Ｘ 已核验", "证件号 <ID_NUMBER> 已核验"),
    ("证件号 110101.19900307.803x", "证件号 <ID_NUMBER>"),
    ("证件号 110101 19900307 8031", "证件号 110101 19900307 8031"),  # check character fails
    ("证件号 110101 19901307 803X", "证件号 110101 19901307 803X"),  # month 13
    ("证件号 110101-19900307 803X", "证件号 110101-19900307 803X"),  # mixed separators: not one number
    ("卡号 6222 0212 3456 7890 128", "卡号 <BANK_CARD>"),
    ("卡号 ６２２２－０２１２－３４５６－７８９４", "卡号 <BANK_CARD>"),
    ("卡号 622202 1234567890128", "卡号 <BANK_CARD>"),
    ("卡号 3782 822463 10005", "卡号 <BANK_CARD>"),  # Amex 4-6-5
    ("卡号 6222 0212 3456 7890 129", "卡号 6222 0212 3456 7890 129"),  # Luhn fails
    ("订单号 4111 1111 1111 1111", "订单号 4111 1111 1111 1111"),  # an order word before it
    ("卡号 4367 0755 1234 5678 已挂失", "卡号 4367 0755 1234 5678 已挂失"),  # Luhn fails; no phone out of it
    ("证件 411 021 19900307 8032", "证件 411 021 19900307 8032"),  # no phone out of a failed ID
    ("电话 (010) 1234 5678", "电话 <PHONE>"),
    ("电话（０７５５）８８８８　６６６６", "电话<PHONE>"),
    ("总机 010-6552-9988 转 123，传真", "总机 <PHONE>，传真"),
    ("Tel (021) 6543 2100 ext. 12.", "Tel <PHONE>."),
    ("电话 0755 8888 6666 分机号 88", "电话 <PHONE>"),
    ("Tel: +86 10 6552 9988", "Tel: <PHONE>"),
    ("Tel: +86 (0)755 8888 6666", "Tel: <PHONE>"),
    ("Mobile: +86 138 0013 8000", "Mobile: <PHONE>"),
    ("Mobile: (+86) 138-0013-8000", "Mobile: <PHONE>"),
    ("手机：＋８６　１３８　００１３　８０００。", "手机：<PHONE>。"),
    ("电话：（０１０）　６５５２　９９８８　转　１２３", "电话：<PHONE>"),
    ("手机号码：138 0013 8000", "手机号码：<PHONE>"),
    ("Tel: +86 150 7036 4547\nPeople who called", "Tel: <PHONE>\nPeople who called"),  # no unit across a line
    ("共 15070364547 人次", "共 15070364547 人次"),
    ("电话（0755）-8888-6666 转分机 801", "电话<PHONE>"),
    ("订单问题请拨打 (010) 6552 9988", "订单问题请拨打 <PHONE>"),
    ("订单号：0571 2345 6789", "订单号：0571 2345 6789"),  # an order number's label right before it
    ("快递单号 138 0013 8000", "快递单号 138 0013 8000"),
    ("发票代码 0440 3190 0111", "发票代码 0440 3190 0111"),
    ("im Video dargestellt:\n发票代码：014211230705", "im Video dargestellt:\n发票代码：014211230705"),
    ("Tel. 075588886666", "Tel. <PHONE>"),
    ("call 0800 138 1016 (UK)", "call 0800 138 1016 (UK)"),  # 4-3-4 is no mainland number
    ("call 0121 2025050 or visit", "call <PHONE> or visit"),  # unsplit: any 0 + 2-3 digit area code, as before
    ("电话 (012) 3456 7890", "电话 (012) 3456 7890"),  # no area code 012
    ("ISBN 978 7 111 54742 6", "ISBN 978 7 111 54742 6"),
    ("合计 ¥1,380,013,800.00", "合计 ¥1,380,013,800.00"),
    ("2024 03 15 08:30:00 至 2024.03.16", "2024 03 15 08:30:00 至 2024.03.16"),
])
def test_grouped_cases(redactor, text, want):
    assert redactor.redact(text)[0] == want


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
    from mdfs.pipeline.stages.pii import load_custom
    from mdfs.pipeline.schema import CustomPii

    custom = load_custom([CustomPii(type="employee_id", pattern=r"EMP-\d{6}", validator="operator:truth")])
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

    from mdfs.pipeline.stages import pii_patterns

    def longest_run(s):
        return max((len(r) for r in re.findall(r"\d+", s)), default=0)

    rnd = random.Random(7)
    alphabet = "0123456789" * 4 + " -.+():：xXabcdefABCDEF@qQ微信号wWvV支付宝"
    texts = ["".join(rnd.choice(alphabet) for _ in range(rnd.randrange(5, 80))) for _ in range(6000)]
    texts += [rnd.choice(alphabet) + ".".join(str(rnd.randrange(10 ** rnd.randrange(1, 5))) for _ in range(4))
              + rnd.choice(alphabet) for _ in range(300)]  # dotted quads, some too long
    texts += [rnd.choice(["", "(", "+86 ", "x", "0"]) + rnd.choice(" -.").join(  # digit groups as forms print them
        "".join(rnd.choice("0123456789") for _ in range(rnd.choice([2, 3, 4, 6, 8])))
        for _ in range(rnd.randrange(2, 6))) + rnd.choice(["", "X", " 转 12", ")"]) for _ in range(3000)]
    texts += ["+886 912 345 678", "0086 138-1234-5678", "(010)62345678-123", "6222 0212 3456 7890 123",
              "110 101 19900307 803X", "110101.19900307.803X", "(0755) 8888 6666 转 12", "+86 10 6552 9988",
              "QQ号: 123456789", "WeChat: wxid_ab12cd", "支付宝账号 13812345678", "fe80::1:2:3", "2001:db8::8a2e:370:7334"]
    gates = [(pii_patterns.ID18_RE, 17), (pii_patterns.ID15_RE, 15), (pii_patterns.MOBILE_RE, 4), (pii_patterns.LANDLINE_BARE_RE, 10)]
    seen = dict.fromkeys(["runs", "id grouped", "landline", "card", "account", "ipv4", "ipv6"], 0)
    for t in texts:
        for pattern, least in gates:
            for m in pattern.finditer(t):
                assert longest_run(m.group()) >= least, (pattern.pattern, m.group())
                seen["runs"] += 1
        for m in pii_patterns.ID18_GROUPED_RE.finditer(t):  # the birth date is a run of exactly eight
            assert 8 in [len(r) for r in re.findall(r"\d+", m.group())], m.group()
            seen["id grouped"] += 1
        for m in pii_patterns.LANDLINE_RE.finditer(t):  # subscriber: a run of 7-8, two runs of four, or glued to +86's area
            runs = [len(r) for r in re.findall(r"\d+", m.group())]
            assert max(runs) >= 6 or runs.count(4) >= 2, m.group()
            seen["landline"] += 1
        for m in pii_patterns.CARD_RE.finditer(t):
            runs = [len(r) for r in re.findall(r"\d+", m.group())]
            assert max(runs) >= 13 or sum(n >= 4 for n in runs) >= 3, m.group()
            seen["card"] += 1
        for m in pii_patterns.ACCOUNT_RE.finditer(t):
            assert any(k in m.group() for k in pii_patterns.ACCOUNT_WORDS), m.group()
            seen["account"] += 1
        for m in pii_patterns.IPV4_RE.finditer(t):
            assert re.search(r"\d\.\d", m.group())
            seen["ipv4"] += 1
        expected = [(m.start(), m.end()) for m in pii_patterns.IPV6_RE.finditer(t)
                    if pii_patterns.starts_token(t, m.start(), pii_patterns.HEX + ":") and ":" in m.group()]
        assert list(pii_patterns.ipv6_runs(t)) == expected, t
        seen["ipv6"] += len(expected)
    assert min(seen.values()) >= 5, seen  # the strings exercise every gate

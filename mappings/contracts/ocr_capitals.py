"""Reading a capital amount (大写) out of OCR text: a closed alphabet decoded under the strict grammar.

Debian's chi_sim model has no 叁, 柒, 捌 or 仟 in its character set (``combine_tessdata -u`` on
chi_sim.traineddata lists 4,023 characters without them), so Tesseract reads those as look-alikes,
and it often misreads 壹/贰 too. ``READ_AS`` maps each character the model was measured to produce
for a capital character (``python -m sandbox.contracts.calibrate``: random amounts in three Debian
CJK fonts, clean and noisy) to the capital(s) it stood for. ``decode_ocr_capitals`` tries every
reading the table allows and keeps it only if **exactly one amount** parses under the strict grammar
(``capitals.parse_capital_amount``); several amounts or none is a refusal. The figures are never
consulted: agreement between figures and capitals stays an independent check.

Pure; imports only mappings.contracts.capitals.
"""

from __future__ import annotations

import itertools

from mappings.contracts.capitals import ALLOWED, CapitalAmountError, parse_capital_amount

READ_AS: dict[str, str] = {
    "万": "万",
    "下": "贰",
    "不": "贰",
    "专": "壹",
    "业": "柒",
    "个": "佰",
    "丰": "贰",
    "于": "贰",
    "交": "壹",
    "人": "佰仟",
    "亿": "亿",
    "什": "仟",
    "仁": "仟",
    "介": "佰",
    "从": "佰",
    "仔": "仟",
    "他": "仟",
    "件": "仟",
    "任": "仟",
    "伍": "伍",
    "会": "叁",
    "伯": "佰",
    "但": "壹",
    "佐": "叁",
    "佑": "叁",
    "作": "仟",
    "佰": "佰",
    "侍": "仟",
    "侠": "叁",
    "信": "佰",
    "倩": "佰",
    "值": "佰",
    "做": "柒",
    "健": "肆",
    "傅": "叁",
    "僚": "叁",
    "僵": "叁",
    "元": "元",
    "党": "壹",
    "全": "佰叁",
    "关": "壹",
    "其": "贰",
    "内": "柒",
    "击": "捌",
    "分": "分",
    "到": "贰玖",
    "制": "捌",
    "剧": "壹",
    "功": "贰",
    "半": "柒",
    "压": "壹",
    "参": "叁",
    "反": "捌",
    "可": "壹",
    "合": "壹",
    "吉": "壹贰",
    "和": "零",
    "哉": "贰",
    "喜": "壹",
    "在": "肆",
    "址": "贰",
    "坦": "壹",
    "城": "贰",
    "堆": "零",
    "壳": "贰壹",
    "壶": "壹",
    "壹": "壹",
    "大": "壹",
    "天": "贰",
    "失": "拾",
    "夺": "壹",
    "套": "叁壹",
    "妆": "柒",
    "妻": "壹",
    "委": "零",
    "娃": "肆",
    "娄": "柒",
    "媳": "肆",
    "嫂": "肆",
    "孜": "玖",
    "审": "壹",
    "客": "壹",
    "寒": "壹",
    "寺": "贰",
    "寿": "肆",
    "尖": "柒",
    "岩": "肆",
    "峙": "肆",
    "崎": "柒",
    "建": "肆",
    "式": "贰",
    "弯": "壹",
    "当": "柒壹",
    "律": "肆",
    "忒": "贰",
    "志": "壹",
    "总": "壹",
    "恋": "壹",
    "惑": "贰",
    "意": "壹",
    "成": "贰",
    "所": "捌",
    "手": "捌",
    "扬": "捌",
    "承": "贰",
    "投": "捌",
    "抬": "拾",
    "押": "捌",
    "抽": "捌",
    "担": "捌",
    "拉": "捌",
    "拓": "捌",
    "拜": "肆",
    "拟": "捌",
    "拥": "捌",
    "拨": "捌",
    "择": "捌",
    "拾": "拾",
    "挨": "捌",
    "挫": "拾",
    "捡": "拾",
    "授": "捌",
    "提": "捌",
    "握": "捌",
    "揭": "捌",
    "揽": "捌",
    "搁": "捌",
    "搜": "肆捌",
    "搬": "捌",
    "摇": "捌",
    "摘": "捌",
    "撞": "捌",
    "数": "柒",
    "整": "整",
    "斤": "捌",
    "晶": "捌",
    "未": "柒",
    "机": "捌",
    "杜": "壹",
    "束": "贰",
    "枯": "壹",
    "染": "柒",
    "查": "壹",
    "栖": "壹",
    "棍": "壹",
    "橱": "壹",
    "款": "贰",
    "殴": "贰",
    "沫": "柒",
    "法": "柒",
    "浅": "柒",
    "涂": "柒",
    "涛": "柒",
    "深": "柒",
    "潜": "柒",
    "灶": "柒",
    "烤": "柒",
    "焉": "贰",
    "牵": "壹",
    "玖": "玖",
    "玩": "贰",
    "玫": "玖",
    "珊": "贰",
    "球": "贰",
    "瓜": "捌",
    "直": "贰",
    "矢": "叁",
    "砷": "捌",
    "硅": "肆",
    "碌": "柒",
    "碍": "壹",
    "章": "壹",
    "竺": "肆",
    "等": "零",
    "米": "柒",
    "类": "柒",
    "索": "壹",
    "而": "捌",
    "肆": "肆",
    "臣": "贰",
    "芝": "贰",
    "芭": "贰",
    "苇": "贰",
    "苓": "零",
    "莹": "贰",
    "蒜": "贰",
    "藉": "贰",
    "融": "贰",
    "要": "壹",
    "角": "角",
    "训": "壹",
    "误": "壹",
    "谷": "佰",
    "豆": "壹",
    "贰": "贰",
    "起": "贰",
    "趟": "贰",
    "达": "壹",
    "过": "壹",
    "这": "壹",
    "迪": "柒壹",
    "迷": "柒",
    "迹": "壹",
    "逢": "肆",
    "铀": "捌",
    "陆": "陆",
    "雪": "柒零",
    "零": "零",
    "需": "贰",
    "霍": "零",
    "革": "贰",
    "项": "贰",
    "驼": "壹",
    "骞": "壹",
    "鸯": "捌",
    "鹤": "零",
}
READ_AS.update({c: c for c in ALLOWED})
READ_AS.update({"伯": "佰", "圆": "元", "正": "整", "萬": "万"})
MAX_READINGS = 256


def decode_ocr_capitals(read: str) -> tuple[int, bool]:
    """(minor units, exact) for an OCR'd capital run; ``exact``: every character was read as itself.

    Raises ``CapitalAmountError`` when a character has no reading or when no, or more than one,
    amount fits the grammar.
    """
    options = []
    for i, ch in enumerate(read):
        cands = READ_AS.get(ch)
        if not cands:
            raise CapitalAmountError(
                f"OCR capital amount {read!r}: character {i + 1} {ch!r} has no reading",
                field="amount_capitals",
            )
        options.append(cands)
    exact = all(ch in ALLOWED for ch in read)
    values: set[int] = set()
    for n, combo in enumerate(itertools.product(*options)):
        if n >= MAX_READINGS:
            raise CapitalAmountError(
                f"OCR capital amount {read!r}: too many readings", field="amount_capitals"
            )
        try:
            values.add(parse_capital_amount("".join(combo)))
        except CapitalAmountError:
            continue
    if len(values) != 1:
        why = "no reading fits the grammar" if not values else f"{len(values)} readings fit the grammar"
        raise CapitalAmountError(f"OCR capital amount {read!r}: {why}", field="amount_capitals")
    return values.pop(), exact


# What chi_tra prints for capitals: the traditional forms (參 陸 萬 貳 億 圓) are the same capitals;
# the rest was measured like READ_AS (``python -m sandbox.contracts.calibrate 12 chi_tra``).
TRA_READ_AS: dict[str, str] = {c: c for c in ALLOWED}
TRA_READ_AS.update(
    {"參": "叁", "叄": "叁", "陸": "陆", "萬": "万", "貳": "贰", "億": "亿", "圓": "元", "伯": "佰"}
)
# measured, characters seen at least 3 times (alternatives below 15 percent dropped)
TRA_READ_AS.update(
    {
        "伯": "佰",
        "億": "亿",
        "公": "叁",
        "參": "叁",
        "又": "叁",
        "宣": "壹",
        "屆": "贰",
        "廚": "贰",
        "抬": "拾",
        "拐": "捌",
        "捨": "拾",
        "染": "柒",
        "查": "壹",
        "瑪": "玖",
        "窒": "壹",
        "筆": "肆",
        "系": "贰",
        "萬": "万",
        "誤": "贰",
        "講": "贰",
        "貳": "贰",
        "陸": "陆",
        "革": "贰",
    }
)


def _options(read: str, table: dict[str, str]) -> list[str]:
    return [table.get(ch, "") for ch in read]


def _decode_options(options: list[str]) -> set[int]:
    values: set[int] = set()
    if any(not o for o in options):
        return values
    for n, combo in enumerate(itertools.product(*options)):
        if n >= MAX_READINGS:
            return set()
        try:
            values.add(parse_capital_amount("".join(combo)))
        except CapitalAmountError:
            continue
    return values


def decode_readings(primary: str, alternatives: list[str]) -> tuple[int, bool]:
    """Decode a capital run read by chi_sim (``primary``) and by chi_tra (``alternatives``).

    Each reading is decoded alone; readings of the same length are also merged character by
    character (where both have readings, only those they share; where one has none, the other's).
    Every amount any of these yields must be the same one, else the run is refused as ambiguous.
    """
    found: set[int] = set()
    exact = bool(primary) and all(ch in ALLOWED for ch in primary)
    p_opts = _options(primary, READ_AS)
    found |= _decode_options(p_opts)
    for alt in alternatives:
        a_opts = _options(alt, TRA_READ_AS)
        found |= _decode_options(a_opts)
        if len(alt) == len(primary):
            merged = []
            for x, y in zip(p_opts, a_opts, strict=True):
                both = "".join(c for c in x if c in y)
                merged.append(both or (x if not y else y if not x else ""))
            found |= _decode_options(merged)
    if len(found) != 1:
        why = "no reading fits the grammar" if not found else f"{len(found)} different amounts fit"
        raise CapitalAmountError(
            f"OCR capital amount {primary!r} / {alternatives!r}: {why}", field="amount_capitals"
        )
    return found.pop(), exact

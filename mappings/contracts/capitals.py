"""Strict parser of Chinese capital amounts (大写金额) into integer minor units (fen).

Follows the writing rules banks apply to 大写 amounts (支付结算办法 附件: 正确填写票据和结算凭证的
基本规定): digits 零壹贰叁肆伍陆柒捌玖, units 拾佰仟, sections 万 and 亿, 元 (or 圆), 角, 分, and 整 (or
正) after 元 or 角, never after 分. A zero run inside a section must be written as one 零
(壹仟零伍元 = 1005); a zero run that reaches a 万/元 boundary may omit it (壹拾万柒仟元 = 107000); a
missing 角 before 分 needs the 零 (壹元零伍分). Anything else — a unit twice, units out of order, a
stray 零, 零零, 整 after 分, unknown characters — is refused with the position, never guessed: a
misread capital amount must surface as a disagreement, not as a plausible number.

Pure: text in, int out. Must never import anything but the standard library and mappings.errors.
"""

from __future__ import annotations

from mappings.errors import MappingError

DIGITS = {"零": 0, "壹": 1, "贰": 2, "叁": 3, "肆": 4, "伍": 5, "陆": 6, "柒": 7, "捌": 8, "玖": 9}
UNITS = {"拾": 1, "佰": 2, "仟": 3}
SECTIONS = {"万": 4, "亿": 8}
YUAN = {"元", "圆"}
WHOLE = {"整", "正"}
ALLOWED = set(DIGITS) | set(UNITS) | set(SECTIONS) | YUAN | WHOLE | {"角", "分"}
MAX_POSITION = 11  # up to 玖仟玖佰玖拾玖亿... (below one trillion yuan)


class CapitalAmountError(MappingError):
    code = "bad_capital_amount"


def _fail(text: str, index: int, why: str) -> CapitalAmountError:
    return CapitalAmountError(
        f"capital amount {text!r} at character {index + 1}: {why}", field="amount_capitals"
    )


def parse_capital_amount(text: str) -> int:
    """``'壹佰贰拾叁万肆仟伍佰陆拾柒元捌角玖分'`` -> ``12345678 9`` fen (123456789).

    ``text`` is the amount alone: a leading 人民币 and surrounding whitespace are the caller's to
    strip. Raises ``CapitalAmountError`` for anything that is not a well-formed amount.
    """
    s = text
    if not s:
        raise CapitalAmountError("capital amount is empty", field="amount_capitals")
    for i, ch in enumerate(s):
        if ch not in ALLOWED:
            raise _fail(text, i, f"{ch!r} is not a capital-amount character")
    # Split off the integer part at 元.
    yuan_at = next((i for i, ch in enumerate(s) if ch in YUAN), -1)
    if yuan_at >= 0:
        if any(ch in YUAN for ch in s[yuan_at + 1 :]):
            raise _fail(text, s.index(s[yuan_at], yuan_at + 1), "元 written twice")
        integer_part, fraction_part, frac_offset = s[:yuan_at], s[yuan_at + 1 :], yuan_at + 1
        if not integer_part:
            raise _fail(text, yuan_at, "元 without an amount before it")
    else:
        integer_part, fraction_part, frac_offset = "", s, 0
        if not any(ch in "角分" for ch in s):
            raise _fail(text, len(s) - 1, "no 元, 角 or 分")
        if any(ch in UNITS or ch in SECTIONS for ch in s):
            raise _fail(
                text,
                next(i for i, ch in enumerate(s) if ch in UNITS or ch in SECTIONS),
                "a unit of yuan without 元",
            )
    yuan, ones_zero = _parse_integer(text, integer_part) if integer_part else (0, True)
    fen = _parse_fraction(
        text, fraction_part, frac_offset, has_yuan=bool(integer_part), ones_zero=ones_zero and yuan > 0
    )
    total = yuan * 100 + fen
    if total == 0 and integer_part != "零":
        raise _fail(text, 0, "a zero amount must be written 零元整")
    return total


def _parse_integer(text: str, part: str) -> tuple[int, bool]:
    """The yuan before 元 and whether its ones digit is zero."""
    if part == "零":
        return 0, True
    pairs: list[tuple[int, int, bool, int]] = []  # (digit, position, zero_before, index)
    section_base = {"亿": 8, "万": 4}
    i = 0
    n = len(part)
    pending_zero = False
    pending_digit: tuple[int, int] | None = None  # (digit, index) waiting for its unit
    current: list[tuple[int, int, bool, int]] = []  # pairs of the section being read, position in-section
    seen_sections: list[int] = []

    def close_section(base: int, at: int) -> None:
        nonlocal current
        if pending_digit is not None:
            d, di = pending_digit
            current.append((d, 0, pending_zero_for_digit[0], di))
        if not current:
            raise _fail(text, at, "a section unit with no digits before it")
        for d, p, z, di in current:
            pairs.append((d, p + base, z, di))
        current = []

    pending_zero_for_digit = [False]
    while i < n:
        ch = part[i]
        if ch in DIGITS:
            if pending_digit is not None:
                raise _fail(text, i, "two digits without a unit between them")
            d = DIGITS[ch]
            if d == 0:
                if pending_zero:
                    raise _fail(text, i, "零 written twice")
                if i == n - 1:
                    raise _fail(text, i, "零 at the end of the yuan part")
                if not pairs and not current:
                    raise _fail(text, i, "零 at the start of the amount")
                pending_zero = True
            else:
                pending_digit = (d, i)
                pending_zero_for_digit[0] = pending_zero
                pending_zero = False
        elif ch in UNITS:
            if pending_zero:
                raise _fail(text, i, "零 directly before a unit")
            if pending_digit is None:
                # a leading 拾 stands for 壹拾 (拾万元 = 100000); anywhere else a digit is missing
                if ch == "拾" and not pairs and not current:
                    current.append((1, 1, False, i))
                    i += 1
                    continue
                raise _fail(text, i, f"{ch} without a digit before it")
            d, di = pending_digit
            current.append((d, UNITS[ch], pending_zero_for_digit[0], di))
            pending_digit = None
        elif ch in SECTIONS:
            if pending_zero:
                raise _fail(text, i, "零 directly before a section unit")
            base = section_base[ch]
            if seen_sections and base >= seen_sections[-1]:
                raise _fail(text, i, f"{ch} out of order")
            close_section(base, i)
            pending_digit = None
            seen_sections.append(base)
        else:
            raise _fail(text, i, f"{ch} inside the yuan part")
        i += 1
    if pending_digit is not None:
        d, di = pending_digit
        current.append((d, 0, pending_zero_for_digit[0], di))
    for d, p, z, di in current:
        pairs.append((d, p, z, di))
    # Positions strictly decrease; a zero run inside a section needs its 零, one that reaches a
    # section boundary (the next pair is a section's 仟) may omit it, and no 零 stands for nothing.
    value = 0
    prev: int | None = None
    for d, p, z, di in pairs:
        if p > MAX_POSITION:
            raise _fail(text, di, "amount too large")
        if prev is not None:
            if p >= prev:
                raise _fail(text, di, "units out of order")
            gap = prev - p - 1
            if gap == 0 and z:
                raise _fail(text, di, "零 where no digit is skipped")
            if gap > 0 and not z and p % 4 != 3:
                raise _fail(text, di, "skipped digits need a 零")
        elif z:
            raise _fail(text, di, "零 at the start of the amount")
        value += d * 10**p
        prev = p
    ones_zero = prev is None or prev > 0
    return value, ones_zero


def _parse_fraction(text: str, part: str, offset: int, *, has_yuan: bool, ones_zero: bool) -> int:
    if part == "" or (has_yuan and part in WHOLE):
        return 0
    i = 0
    zero_before_jiao = False
    if part[0] == "零":
        if not has_yuan:
            raise _fail(text, offset, "零 at the start of the amount")
        i = 1
        zero_before_jiao = True
    jiao = fen = None
    if (
        i + 1 < len(part) + 1
        and i < len(part)
        and part[i] in DIGITS
        and part[i] != "零"
        and i + 1 < len(part)
        and part[i + 1] == "角"
    ):
        jiao = DIGITS[part[i]]
        i += 2
        if zero_before_jiao and not ones_zero:
            raise _fail(text, offset, "零 after 元 where the ones digit is not zero")
        if i < len(part) and part[i] == "零":
            raise _fail(text, offset + i, "零 between 角 and 分")
    if i < len(part) and part[i] in DIGITS and part[i] != "零" and i + 1 < len(part) and part[i + 1] == "分":
        fen = DIGITS[part[i]]
        if jiao is None and has_yuan and not zero_before_jiao:
            raise _fail(text, offset + i, "分 without 角 needs 零 after 元")
        i += 2
        if i < len(part):
            raise _fail(text, offset + i, "nothing may follow 分 (no 整 after 分)")
        return (jiao or 0) * 10 + fen
    if jiao is None:
        raise _fail(text, offset + i, "expected 整, 角 or 分 after 元")
    if i < len(part) and part[i] in WHOLE and i == len(part) - 1:
        return jiao * 10
    if i == len(part):
        return jiao * 10
    raise _fail(text, offset + i, "unexpected characters after 角")


def format_capital_amount(minor: int) -> str:
    """Integer fen -> the canonical 大写 text (the corpus generator and tests write with it).

    Writes every 零 the rules allow (the fuller form), 整 after 元 and 角.
    """
    if minor < 0:
        raise ValueError("negative amount")
    yuan, fen_part = divmod(minor, 100)
    jiao, fen = divmod(fen_part, 10)
    names = "零壹贰叁肆伍陆柒捌玖"
    out = []
    if yuan == 0:
        out.append("零" if fen_part == 0 else "")
    else:
        digits = str(yuan)
        n = len(digits)
        zero = False
        for idx, ch in enumerate(digits):
            pos = n - 1 - idx
            d = int(ch)
            if d == 0:
                zero = True
            else:
                if zero:
                    out.append("零")
                    zero = False
                out.append(names[d] + {0: "", 1: "拾", 2: "佰", 3: "仟"}[pos % 4])
            if pos in (4, 8) and pos % 4 == 0:
                section = digits[max(0, idx - 3) : idx + 1]
                if int(section) > 0:
                    out.append("万" if pos == 4 else "亿")
                    # a zero run crossing the boundary is written after it (壹万零伍佰)
        text = "".join(out)
        out = [text]
    if yuan or fen_part == 0:
        out.append("元")
    if fen_part == 0:
        out.append("整")
    else:
        if jiao:
            out.append(names[jiao] + "角")
        elif yuan:
            out.append("零")
        if fen:
            out.append(names[fen] + "分")
        else:
            out.append("整")
    return "".join(out)

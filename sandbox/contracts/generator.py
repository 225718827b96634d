"""Deterministic contract corpus: ``generate_corpus(out_dir, count, seed)``.

Each contract comes from one of four layouts (classic articles, key/value table, equipment sale
with inline codes, one-page order form), with its ground truth (``truth.jsonl``) and the payable,
earlier payables and voucher it backs. Half are scans (``sandbox.contracts.scan``): scanned PDFs,
multi-page TIFFs, PNG and JPEG pages, rotated, noisy, some with a red seal over the signature
block. A quarter carry a planted disagreement with their payable: amount, USCC, date or clause.
The same seed gives the same corpus, byte for byte for the text PDFs.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path

from stdnum.cn import uscc as stdnum_uscc

from canonical.contract import PayableFacts, VoucherFacts
from mappings.contracts.capitals import format_capital_amount
from sandbox.contracts.layout import Doc

CITIES = [
    "上海",
    "北京",
    "深圳",
    "武汉",
    "成都",
    "西安",
    "南京",
    "杭州",
    "天津",
    "重庆",
    "长沙",
    "合肥",
    "郑州",
    "济南",
    "青岛",
    "厦门",
    "苏州",
    "宁波",
    "昆明",
    "沈阳",
]
TRADES = [
    "宏达",
    "华信",
    "建联",
    "中科",
    "恒通",
    "瑞丰",
    "远航",
    "天成",
    "鼎盛",
    "金桥",
    "永安",
    "新源",
    "广和",
    "润泽",
    "泰华",
    "国盛",
    "中铁",
    "东方",
    "长江",
    "海川",
    "明远",
    "博远",
    "正泰",
    "安邦",
]
INDUSTRIES = [
    "建设工程",
    "电力设备",
    "物资贸易",
    "机电设备",
    "钢结构",
    "建材",
    "环保科技",
    "电缆",
    "工程机械",
    "信息技术",
    "新材料",
    "水务工程",
    "交通设施",
    "化工",
    "精密制造",
    "供应链管理",
]
SUFFIXES = ["有限公司", "股份有限公司", "集团有限公司", "有限责任公司"]
GOODS = [
    ("钢筋", "HRB400 Φ25"),
    ("电力电缆", "YJV22-8.7/15kV"),
    ("水泥", "P.O 42.5"),
    ("变压器", "SCB13-1000"),
    ("钢板", "Q355B 20mm"),
    ("阀门", "DN200 PN16"),
    ("配电柜", "GGD2"),
    ("管材", "DN300 球墨铸铁"),
]
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"

YES_CLAUSES = [
    "甲方可以电子债权凭证方式向乙方支付本合同款项，乙方同意接收甲方通过供应链金融平台开立的电子债权凭证。",
    "双方同意，本合同项下货款可采用应收账款电子凭证方式结算，乙方同意接收。",
    "本合同款项可以银行转账或电子债权凭证方式支付，乙方接受以电子债权凭证支付。",
]
NO_CLAUSES = [
    "本合同款项以银行转账方式支付，甲方不得以电子债权凭证、商业汇票等方式支付。",
    "乙方不接受以电子债权凭证方式支付本合同款项，甲方应以银行转账方式付款。",
]
ABSENT_CLAUSES = [
    "本合同款项以银行转账方式支付至乙方指定账户。",
    "甲方以银行转账方式付款，乙方应在收款前开具合法有效的增值税专用发票。",
]
FILLER = [
    "乙方保证所供货物为全新、合格产品，符合国家标准及行业标准，并提供产品合格证及质量证明文件。",
    "任何一方违反本合同约定的，应承担违约责任，赔偿守约方因此遭受的全部损失。",
    "因本合同引起的争议，双方应协商解决；协商不成的，任何一方均可向甲方所在地人民法院提起诉讼。",
    "本合同一式肆份，甲乙双方各执贰份，具有同等法律效力，自双方签字盖章之日起生效。",
    "乙方应按照甲方要求提供货物的包装、运输及装卸服务，运输途中的风险由乙方承担。",
    "未经对方书面同意，任何一方不得将本合同项下的权利义务转让给第三方。",
]
LAYOUTS = ("classic", "table", "equipment", "order")


@dataclass(frozen=True)
class ContractTruth:
    id: str
    layout: str
    contract_no: str
    buyer_name: str
    buyer_uscc: str
    seller_name: str
    seller_uscc: str
    amount_minor: int
    currency: str
    signing_date: date
    deliver_by: date
    acceptance_days: int
    payment_term_days: int
    voucher_clause: str  # yes | no | absent

    def as_json(self) -> dict[str, object]:
        d = asdict(self)
        for k in ("signing_date", "deliver_by"):
            d[k] = d[k].isoformat()
        return d


@dataclass
class CorpusItem:
    truth: ContractTruth
    fmt: str  # text_pdf | scanned_pdf | tiff | png | jpeg
    file: str
    pages: int
    payable: PayableFacts
    earlier_payables: tuple[PayableFacts, ...]
    vouchers: tuple[VoucherFacts, ...]
    planted: str | None  # amount | uscc | date | clause
    sealed: bool = False
    rotation: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)


# -- truth ---------------------------------------------------------------------------------------


def make_uscc(rng: random.Random) -> str:
    body = rng.choice("9") + rng.choice("123") + "".join(rng.choice("0123456789") for _ in range(6))
    body += "".join(rng.choice(USCC_ALPHABET) for _ in range(9))
    return body + stdnum_uscc.calc_check_digit(body)


def make_name(rng: random.Random) -> str:
    return rng.choice(CITIES) + rng.choice(TRADES) + rng.choice(INDUSTRIES) + rng.choice(SUFFIXES)


def make_contract_no(rng: random.Random, year: int) -> str:
    style = rng.randrange(3)
    if style == 0:
        return f"CG-{year}-{rng.randrange(1, 99999):05d}"
    if style == 1:
        return f"HT{year}{rng.choice(['SH', 'BJ', 'WH', 'CD'])}{rng.randrange(1, 9999):04d}"
    return f"GX{year % 100:02d}{rng.randrange(1, 12):02d}-{rng.randrange(100, 999)}"


def make_truth(rng: random.Random, index: int, layout: str, clause: str) -> ContractTruth:
    signing = date(2025, 1, 1) + timedelta(days=rng.randrange(0, 540))
    buyer, seller = make_name(rng), make_name(rng)
    while seller == buyer:
        seller = make_name(rng)
    amount = rng.randrange(5_000, 30_000_000) * 100 + rng.choice([0, 0, 0, rng.randrange(1, 100)])
    return ContractTruth(
        id=f"c{index:04d}",
        layout=layout,
        contract_no=make_contract_no(rng, signing.year),
        buyer_name=buyer,
        buyer_uscc=make_uscc(rng),
        seller_name=seller,
        seller_uscc=make_uscc(rng),
        amount_minor=amount,
        currency="CNY",
        signing_date=signing,
        deliver_by=signing + timedelta(days=rng.randrange(10, 90)),
        acceptance_days=rng.choice([3, 5, 7, 10, 15]),
        payment_term_days=rng.choice([30, 45, 60, 60, 90]),
        voucher_clause=clause,
    )


def figures(minor: int) -> str:
    yuan, fen = divmod(minor, 100)
    return f"{yuan:,}.{fen:02d}"


def cn_date(d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def clause_text(rng: random.Random, kind: str) -> str:
    return rng.choice({"yes": YES_CLAUSES, "no": NO_CLAUSES, "absent": ABSENT_CLAUSES}[kind])


# -- layouts -------------------------------------------------------------------------------------


def render(t: ContractTruth, rng: random.Random) -> tuple[bytes, Doc]:
    return {"classic": _classic, "table": _table, "equipment": _equipment, "order": _order}[t.layout](t, rng)


def _classic(t: ContractTruth, rng: random.Random) -> tuple[bytes, Doc]:
    d = Doc()
    d.title("采购合同")
    d.two_columns(f"合同编号：{t.contract_no}", f"签订日期：{cn_date(t.signing_date)}")
    d.para(f"签订地点：{rng.choice(CITIES)}市")
    d.space(6)
    d.para(f"甲方（买方）：{t.buyer_name}")
    d.para(f"统一社会信用代码：{t.buyer_uscc}")
    d.para(f"地址：{rng.choice(CITIES)}市{rng.choice(TRADES)}路{rng.randrange(1, 999)}号")
    d.space(4)
    d.para(f"乙方（卖方）：{t.seller_name}")
    d.para(f"统一社会信用代码：{t.seller_uscc}")
    d.para(f"地址：{rng.choice(CITIES)}市{rng.choice(TRADES)}大道{rng.randrange(1, 999)}号")
    d.space(6)
    d.para(
        "根据《中华人民共和国民法典》及相关法律法规，甲乙双方经平等协商，就甲方向乙方采购下列货物事宜达成如下协议："
    )
    d.para("第一条 货物名称、规格和数量")
    goods = rng.sample(GOODS, 3)
    d.table([(g, f"规格型号：{s}，数量：{rng.randrange(10, 900)}") for g, s in goods], key_width=110)
    d.para(
        f"第二条 合同价款：本合同总价款为人民币（大写）{format_capital_amount(t.amount_minor)}"
        f"（小写：¥{figures(t.amount_minor)}），含增值税。"
    )
    d.para(
        f"第三条 交货及验收：乙方应于{cn_date(t.deliver_by)}前将货物交付至甲方指定地点。"
        f"甲方应在收货后{t.acceptance_days}日内完成验收。"
    )
    d.para(f"第四条 付款期限：甲方应在货物验收合格之日起{t.payment_term_days}日内支付全部货款。")
    d.para(f"第五条 支付方式：{clause_text(rng, t.voucher_clause)}")
    for i, text in enumerate(rng.sample(FILLER, 4)):
        d.para(f"第{'六七八九'[i]}条 {text}")
    d.space(20)
    d.two_columns("甲方（盖章）：", "乙方（盖章）：")
    d.mark("seal", dx=d.width / 2 - d.margin + 60)
    d.two_columns(t.buyer_name, t.seller_name)
    d.two_columns("法定代表人或授权代表：", "法定代表人或授权代表：")
    d.two_columns(f"日期：{cn_date(t.signing_date)}", f"日期：{cn_date(t.signing_date)}")
    return d.finish(), d


def _table(t: ContractTruth, rng: random.Random) -> tuple[bytes, Doc]:
    d = Doc()
    d.title("购销合同")
    d.table(
        [
            ("合同编号", t.contract_no),
            ("签订日期", t.signing_date.isoformat()),
            ("需方（买方）", t.buyer_name),
            ("需方统一社会信用代码", t.buyer_uscc),
            ("供方（卖方）", t.seller_name),
            ("供方统一社会信用代码", t.seller_uscc),
            ("合同金额（小写）", f"¥{figures(t.amount_minor)}"),
            ("合同金额（大写）", f"人民币{format_capital_amount(t.amount_minor)}"),
            ("交货日期", f"{t.deliver_by.isoformat()}前"),
            ("验收期限", f"到货后{t.acceptance_days}日内验收"),
            ("付款期限", f"验收合格后{t.payment_term_days}天内付款"),
        ],
        key_width=170,
    )
    d.para("一、质量要求：" + FILLER[0])
    d.para(f"二、交货方式：供方应于{t.deliver_by.isoformat()}前将货物送达需方指定仓库，运费由供方承担。")
    d.para(
        "三、结算方式：" + clause_text(rng, t.voucher_clause).replace("甲方", "需方").replace("乙方", "供方")
    )
    for i, text in enumerate(rng.sample(FILLER[1:], 3)):
        d.para(
            f"{'四五六'[i]}、" + text.replace("甲方", "需方").replace("乙方", "供方").replace("甲乙", "供需")
        )
    d.space(24)
    d.two_columns("需方（盖章）：", "供方（盖章）：")
    d.mark("seal", dx=d.width / 2 - d.margin + 60)
    d.two_columns("委托代理人：", "委托代理人：")
    return d.finish(), d


def _equipment(t: ContractTruth, rng: random.Random) -> tuple[bytes, Doc]:
    d = Doc(size=10.5)
    d.title("设备买卖合同")
    d.para(f"合同编号：{t.contract_no}")
    d.space(4)
    d.para(f"买受人：{t.buyer_name}（统一社会信用代码：{t.buyer_uscc}）")
    d.para(f"出卖人：{t.seller_name}（统一社会信用代码：{t.seller_uscc}）")
    d.space(4)
    g, s = rng.choice(GOODS)
    d.para(f"第一条 标的：出卖人向买受人出售{g}，规格型号{s}，具体配置见附件技术协议。")
    d.para(
        f"第二条 合同总金额：CNY {figures(t.amount_minor)}（人民币{format_capital_amount(t.amount_minor)}），"
        "该价格已包含设备费、运输费、安装调试费及税费。"
    )
    d.para(
        f"第三条 交付与验收：出卖人应不晚于{t.deliver_by.isoformat()}交付设备，"
        f"买受人应在设备到货后{t.acceptance_days}日内组织验收。"
    )
    d.para(f"第四条 付款：买受人应在验收合格后{t.payment_term_days}天内付款。")
    d.para(
        "第五条 结算："
        + clause_text(rng, t.voucher_clause).replace("甲方", "买受人").replace("乙方", "出卖人")
    )
    for i, text in enumerate(rng.sample(FILLER, 3)):
        d.para(
            f"第{'六七八'[i]}条 "
            + text.replace("甲方", "买受人").replace("乙方", "出卖人").replace("甲乙", "买卖")
        )
    d.space(24)
    d.two_columns("买受人（盖章）：", "出卖人（盖章）：")
    d.two_columns("授权代表：", "授权代表：")
    d.space(8)
    d.mark("seal", dx=110)  # the seal sits over the signing date: seal removal matters here
    d.para(f"签订日期：{cn_date(t.signing_date)}")
    return d.finish(), d


def _order(t: ContractTruth, rng: random.Random) -> tuple[bytes, Doc]:
    d = Doc(size=12.0)
    d.title("订货合同", size=22)
    d.para(f"合同号：{t.contract_no}")
    d.para(f"签订日期：{cn_date(t.signing_date)}")
    d.space(6)
    d.para(f"采购方：{t.buyer_name}")
    d.para(f"信用代码：{t.buyer_uscc}")
    d.para(f"供应方：{t.seller_name}")
    d.para(f"信用代码：{t.seller_uscc}")
    d.space(6)
    d.para(f"合同金额：¥{figures(t.amount_minor)}")
    d.para(f"大写：人民币{format_capital_amount(t.amount_minor)}")
    d.para(f"交货：供应方应于{cn_date(t.deliver_by)}前送达，采购方收货后{t.acceptance_days}日内验收。")
    d.para(f"付款：验收合格后{t.payment_term_days}日内付款。")
    d.para("结算：" + clause_text(rng, t.voucher_clause).replace("甲方", "采购方").replace("乙方", "供应方"))
    d.space(30)
    d.two_columns("采购方（盖章）：", "供应方（盖章）：")
    d.mark("seal", dx=d.width / 2 - d.margin + 50)
    return d.finish(), d


# -- payables and planted disagreements ------------------------------------------------------------


def make_facts(
    t: ContractTruth, rng: random.Random, planted: str | None
) -> tuple[PayableFacts, tuple[PayableFacts, ...], tuple[VoucherFacts, ...], dict[str, object]]:
    extra: dict[str, object] = {}
    delivered = t.signing_date + timedelta(
        days=rng.randrange(3, max(4, (t.deliver_by - t.signing_date).days))
    )
    payable_date = delivered + timedelta(days=rng.randrange(0, t.acceptance_days + 1))
    earlier: tuple[PayableFacts, ...] = ()
    share = rng.randrange(20, 60)
    this_amount = t.amount_minor * rng.randrange(20, 100) // 100
    if rng.random() < 0.4:
        first = t.amount_minor * share // 100
        this_amount = min(this_amount, t.amount_minor - first)
        earlier = (
            PayableFacts(
                f"{t.id}-P1",
                t.contract_no,
                t.buyer_name,
                t.buyer_uscc,
                t.seller_name,
                t.seller_uscc,
                first,
                "CNY",
                payable_date,
                delivered,
            ),
        )
    seller_uscc = t.seller_uscc
    maturity = delivered + timedelta(days=t.payment_term_days - rng.randrange(0, 10))
    if planted == "amount":
        if earlier and rng.random() < 0.5:
            this_amount = t.amount_minor - earlier[0].amount_minor + rng.randrange(1, 500_000)
            extra["amount_kind"] = "sum"
        else:
            this_amount = t.amount_minor + rng.randrange(100, 5_000_000)
            extra["amount_kind"] = "single"
    elif planted == "uscc":
        seller_uscc = make_uscc(rng)
    elif planted == "date":
        if rng.random() < 0.5:
            maturity = delivered + timedelta(days=t.payment_term_days + rng.randrange(5, 90))
            extra["date_kind"] = "maturity"
        else:
            delivered = t.signing_date - timedelta(days=rng.randrange(5, 60))
            payable_date = delivered + timedelta(days=2)
            maturity = delivered + timedelta(days=t.payment_term_days - 5)
            extra["date_kind"] = "before_signing"
    payable = PayableFacts(
        f"{t.id}-P2",
        t.contract_no,
        t.buyer_name,
        t.buyer_uscc,
        t.seller_name,
        seller_uscc,
        this_amount,
        "CNY",
        payable_date,
        delivered,
    )
    voucher = VoucherFacts(
        f"{t.id}-V1",
        this_amount,
        "CNY",
        payable_date + timedelta(days=rng.randrange(0, 3)),
        maturity,
        (payable.payable_id,),
    )
    return payable, earlier, (voucher,), extra


# -- the corpus ----------------------------------------------------------------------------------


def plan(count: int, seed: int) -> list[tuple[int, str, str, str | None]]:
    """(index, layout, format, planted) per contract: half scans, a quarter planted, all layouts."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible corpus, not secrets
    formats = ["text_pdf"] * (count - count // 2)
    scans = count // 2
    n_tiff, n_png, n_jpeg = scans // 6, scans // 6, scans // 6
    formats += (
        ["scanned_pdf"] * (scans - n_tiff - n_png - n_jpeg)
        + ["tiff"] * n_tiff
        + ["png"] * n_png
        + ["jpeg"] * n_jpeg
    )
    planted_kinds = ["amount", "uscc", "date", "clause"]
    n_planted = count // 4
    planted: list[str | None] = [planted_kinds[i % 4] for i in range(n_planted)] + [None] * (
        count - n_planted
    )
    rng.shuffle(planted)
    out = []
    for i, fmt in enumerate(formats):
        layout = "order" if fmt in ("png", "jpeg") else LAYOUTS[i % 3]
        if fmt == "text_pdf" and i % 4 == 3:
            layout = "order"
        out.append((i, layout, fmt, planted[i]))
    return out


def build_one(  # noqa: PLR0917 - (index, layout, format, planted, seed) is how plan() lists contracts
    index: int, layout: str, fmt: str, planted: str | None, seed: int, scan_seal: bool | None = None
) -> tuple[CorpusItem, bytes]:
    """One contract: its file bytes and everything known about it. Deterministic per (seed, index)."""
    from sandbox.contracts import scan

    rng = random.Random(seed * 1_000_003 + index)  # noqa: S311 - reproducible corpus
    clause = "yes"
    if planted == "clause":
        clause = rng.choice(["no", "absent"])
    truth = make_truth(rng, index, layout, clause)
    pdf, doc = render(truth, rng)
    payable, earlier, vouchers, extra = make_facts(truth, rng, planted)
    ext = {"text_pdf": "pdf", "scanned_pdf": "pdf", "tiff": "tif", "png": "png", "jpeg": "jpg"}[fmt]
    name = f"{truth.id}.{ext}"
    item = CorpusItem(truth, fmt, name, doc.pages, payable, earlier, vouchers, planted, extra=extra)
    if fmt == "text_pdf":
        return item, pdf
    sealed = rng.random() < 0.5 if scan_seal is None else scan_seal
    data, rotation = scan.make_scan(pdf, doc, fmt, rng, sealed=sealed)
    item.sealed, item.rotation = sealed, rotation
    return item, data


def generate_corpus(out_dir: Path, count: int = 200, seed: int = 15) -> list[CorpusItem]:
    out_dir.mkdir(parents=True, exist_ok=True)
    items = []
    with (out_dir / "truth.jsonl").open("w", encoding="utf-8") as f:
        for index, layout, fmt, planted in plan(count, seed):
            item, data = build_one(index, layout, fmt, planted, seed)
            (out_dir / item.file).write_bytes(data)
            items.append(item)
            f.write(json.dumps(item_json(item), ensure_ascii=False) + "\n")
    return items


def item_json(item: CorpusItem) -> dict[str, object]:
    def facts(x: object) -> dict[str, object]:
        d = asdict(x)  # type: ignore[call-overload]
        return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in d.items()}

    return {
        "file": item.file,
        "fmt": item.fmt,
        "pages": item.pages,
        "planted": item.planted,
        "sealed": item.sealed,
        "rotation": item.rotation,
        "truth": item.truth.as_json(),
        "payable": facts(item.payable),
        "earlier_payables": [facts(p) for p in item.earlier_payables],
        "vouchers": [facts(v) for v in item.vouchers],
        **item.extra,
    }

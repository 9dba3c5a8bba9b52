"""JSON a person reads carries money exactly: ``explain --json`` and
``replay --print`` write USD money figures as decimal strings rounded
half-even to the settlement asset's 6 decimals (exchange_sim/jsonview.py)."""

from __future__ import annotations

import json
from decimal import ROUND_HALF_EVEN, Decimal

import msgspec

from exchange_sim import config as config_mod
from exchange_sim import journal, jsonview, scenario
from exchange_sim.cli import main
from exchange_sim.venue import Venue
from protocol import messages as m

MICRO = Decimal("0.000001")
D = Decimal


def explain_json(capsys, *argv) -> dict:
    assert main(["explain", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def money_fields(node, tag=None):
    """(tag, field, value) of every money field in printed JSON."""
    if isinstance(node, dict):
        own = node.get("msg", tag)
        for k, v in node.items():
            if k in jsonview.MONEY.get(own, ()):
                yield own, k, v
            else:
                yield from money_fields(v, own)
    elif isinstance(node, list):
        for v in node:
            yield from money_fields(v, tag)


def assert_all_money_exact_text(printed: dict) -> int:
    n = 0
    for tag, field, value in money_fields(printed):
        if tag == "HaircutSlice" and field == "up_to" and value is None:
            continue  # the unbounded last bracket
        assert isinstance(value, str), (tag, field, value)
        whole, _, frac = value.lstrip("-").partition(".")
        assert whole.isdigit() and len(frac) == 6 and frac.isdigit(), (tag, field, value)
        n += 1
    return n


def q(x: Decimal) -> Decimal:
    return x.quantize(MICRO, rounding=ROUND_HALF_EVEN)


def test_explain_json_of_the_article_is_exact(capsys):
    """Every money field is a 6-decimal string equal to the article's figure,
    worked here in Decimal from the scenario (BTC 0.2 × 50,000, 5 % haircut;
    SOL 250 × 200 long and BNB 50 × 500 short at IM 2 %, MM 1 %; default
    portfolio profile: E_SOL = 500, E_BNB = −250, c = 0.7)."""
    ex = explain_json(capsys)
    assert assert_all_money_exact_text(ex) > 40
    assert ex["units"].startswith("USD money figures are decimal strings rounded half-even")
    assets = {a["asset"]: a for a in ex["assets"]}
    for name, qty, price in (("BTC", D("0.2"), D(50000)), ("ETH", D(2), D(2500))):
        value = qty * price
        assert D(assets[name]["value"]) == value and D(assets[name]["haircut"]) == value * D("0.05")
        assert D(assets[name]["counted"]) == value * D("0.95")
        assert assets[name]["index_price"] == f"{price:.8f}"
    pos = {p["symbol"]: p for p in ex["positions"]}
    for sym, notional in (("SOL-PERP", D(250) * 200), ("BNB-PERP", D(-50) * 500)):
        assert D(pos[sym]["notional"]) == notional
        assert (D(pos[sym]["cross_im"]), D(pos[sym]["cross_mm"])) == (abs(notional) * D("0.02"), abs(notional) / 100)
    collateral = D("9500") + D("4750")
    assert (D(ex["collateral"]), D(ex["equity"]), D(ex["upnl"])) == (collateral, collateral, 0)
    assert (D(ex["im"]), D(ex["mm"]), D(ex["floor"])) == (1500, 750, D("0.001") * 75_000)
    e_sol, e_bnb, c = D(500), D(-250), D("0.7")
    losses = {s["name"]: D(s["loss"]) for s in ex["scenarios"]}
    assert losses["SOL -"] == e_sol + c * e_bnb and losses["BNB -"] == e_bnb + c * e_sol
    assert losses["market -"] == e_sol + e_bnb and losses["SOL +"] == -(e_sol + c * e_bnb)
    rows = {r["mode"]: r for r in ex["compare"]}
    assert D(rows["portfolio"]["mm"]) == e_sol + c * e_bnb and D(rows["portfolio"]["im"]) == 2 * (e_sol + c * e_bnb)
    assert D(rows["portfolio"]["free"]) == collateral - 2 * (e_sol + c * e_bnb)
    assert D(rows["isolated"]["usable_collateral"]) == 0 and D(rows["isolated"]["free"]) == -1500
    # ratios and rates stay numbers
    assert ex["margin_ratio"] == 19.0 and ex["assets"][0]["brackets"][0]["rate"] == 0.05
    assert ex["scenarios"][0]["moves"] == {"SOL": 0.01, "BNB": 0.007}  # not 0.006999999999999999


NOISY = """[prices]
MEME = "0.3"
SOL = "190.37"
ETH = "2999.99"
[holdings]
MEME = "123.45678901"
ETH = "0.33333333"
USDT = "1000.000001"
[[positions]]
symbol = "SOL-PERP"
qty = "3.3"
entry = "187.113"
"""


def test_explain_json_rounds_float_noise_to_the_exact_figure(capsys, tmp_path):
    """Figures whose floats carry binary noise (the raw message has e.g.
    11.111111010899997 for MEME's haircut) print as the exact figure rounded
    half-even to 6 decimals."""
    path = tmp_path / "noisy.toml"
    path.write_text(NOISY)
    raw = scenario.build(config_mod.default(), scenario.load(path)).explain(scenario.ACCOUNT)
    noisy = [f for a in raw.assets for f in (a.value, a.haircut, a.counted) if len(repr(f).partition(".")[2]) > 6]
    assert noisy, "the scenario must exercise float noise"
    ex = explain_json(capsys, str(path))
    assert_all_money_exact_text(ex)
    meme, eth = D("123.45678901") * D("0.3"), D("0.33333333") * D("2999.99")
    usdt = D("1000.000001")
    assets = {a["asset"]: a for a in ex["assets"]}
    assert D(assets["MEME"]["value"]) == q(meme) and D(assets["MEME"]["haircut"]) == q(meme * D("0.3"))
    assert D(assets["ETH"]["counted"]) == q(eth * D("0.95")) and D(assets["USDT"]["counted"]) == usdt
    notional, upnl = D("3.3") * D("190.37"), D("3.3") * (D("190.37") - D("187.113"))
    (sol,) = ex["positions"]
    assert (D(sol["notional"]), D(sol["upnl"]), D(sol["cross_im"])) == (notional, upnl, notional * D("0.02"))
    collateral = usdt + eth * D("0.95") + meme * D("0.7")
    assert D(ex["collateral"]) == q(collateral) and D(ex["equity"]) == q(collateral + upnl)
    assert D(ex["floor"]) == notional / 1000
    rows = {r["mode"]: r for r in ex["compare"]}
    assert D(rows["isolated"]["free"]) == usdt + upnl - notional * D("0.02")


def test_decimal_text_rounds_half_even_and_never_prints_an_exponent():
    assert jsonview.decimal_text(-11590.984082000003, 6) == "-11590.984082"
    assert jsonview.decimal_text(0.0034999999999999996, 6) == "0.003500"
    assert jsonview.decimal_text(0.0000025, 6) == "0.000002" and jsonview.decimal_text(0.0000035, 6) == "0.000004"
    assert jsonview.decimal_text(-0.0, 6) == "0.000000" and jsonview.decimal_text(1e22, 6) == "10000000000000000000000.000000"
    assert jsonview.decimal_text(float("inf"), 6) is None


def _float_fields(cls) -> set[str]:
    info = msgspec.inspect.type_info(cls)

    def has_float(t) -> bool:
        if isinstance(t, msgspec.inspect.Metadata):  # a field's description wraps its type
            return has_float(t.type)
        if isinstance(t, msgspec.inspect.FloatType):
            return True
        if isinstance(t, msgspec.inspect.UnionType):
            return any(has_float(x) for x in t.types)
        if isinstance(t, (msgspec.inspect.DictType,)):
            return has_float(t.value_type)
        if isinstance(t, (msgspec.inspect.ListType, msgspec.inspect.VarTupleType)):
            return has_float(t.item_type)
        if isinstance(t, msgspec.inspect.TupleType):
            return any(has_float(x) for x in t.item_types)
        return False

    return {f.name for f in info.fields if has_float(f.type)}


# ratios, rates, moves, averages in ticks: numbers, not money
NUMBERS = {
    "PositionView": {"entry_price"}, "AccountUpdate": {"margin_ratio"}, "MarginCall": {"margin_ratio"},
    "LiquidationStarted": {"margin_ratio"}, "LiquidationSlice": {"margin_ratio_after"}, "AutoDeleverage": {"rank"},
    "LiquidationFinished": {"margin_ratio"}, "FundingRate": {"premium"}, "HaircutSlice": {"rate"},
    "ExplainPosition": {"entry_price"}, "ExplainScenario": {"moves"}, "ModeRequirement": {"margin_ratio"}, "Explain": {"margin_ratio"},
    "LeverageTier": {"im_rate", "mm_rate"},
    "OrderRecord": {"avg_price"}, "Ticker": {"vwap"},  # --- history: averages in ticks
}


def test_every_float_field_of_the_protocol_is_classified():
    """A new float field must be sorted into money, price or number, so no
    money figure reaches a person as a float by accident."""
    for name in dir(m):
        cls = getattr(m, name)
        if not (isinstance(cls, type) and issubclass(cls, msgspec.Struct)) or cls.__module__ != m.__name__:
            continue
        floats = _float_fields(cls)
        if not floats:
            continue
        known = jsonview.MONEY.get(name, set()) | jsonview.PRICES.get(name, set()) | NUMBERS.get(name, set())
        assert floats == set(known), name


def test_replay_print_writes_money_as_decimal_strings(tmp_path, capsys):
    """A journaled run with a margin call and a liquidation: the printed
    events' equity and MM are 6-decimal strings, ratios numbers."""
    v = Venue()
    j = journal.Journal(tmp_path)
    ts = 1_700_000_000_000_000_000
    cmds = [m.Deposit(account=1, asset="USDT", amount=10**12), m.Deposit(account=2, asset="USDT", amount=3_000 * 10**6),
            m.NewOrder(account=1, symbol="BTC-PERP", side=m.Side.SELL, qty=1000, price=600_000),
            m.NewOrder(account=2, symbol="BTC-PERP", side=m.Side.BUY, qty=1000, price=600_000),
            m.ShockPrice(asset="BTC", change_bps=-450)]
    seen = []
    for i, cmd in enumerate(cmds, 1):
        j.append(i, ts + i, cmd)
        seen += v.apply(cmd, ts + i)
    j.commit()
    j.close()
    assert any(isinstance(e, (m.MarginCall, m.LiquidationStarted)) for e in seen)
    assert main(["replay", str(tmp_path), "--from-start", "--print"]) == 0
    lines = [ln.strip() for ln in capsys.readouterr().out.splitlines() if ln.startswith("    ")]
    checked = 0
    for line in lines:
        name, _, body = line.partition(" ")
        ev = json.loads(body)
        for field in jsonview.MONEY.get(name, ()):
            if field in ev:
                assert isinstance(ev[field], str) and len(ev[field].partition(".")[2]) == 6, line
                checked += 1
        if name in ("MarginCall", "LiquidationStarted"):
            assert isinstance(ev["margin_ratio"], float)
    assert checked >= 2

"""``venue.explain(account)`` and ``exchange-sim explain``.

The built-in example is the source article's account: 0.2 BTC at $50,000
($10,000) and 2 ETH at $2,500 ($5,000), long 250 SOL-PERP at $200 ($50,000)
and short 50 BNB-PERP at $500 ($25,000), cross mode, default config (BTC and
ETH haircut 5 % below $1M; SOL/BNB tiers IM 2 %, MM 1 % below $100k).
"""

from __future__ import annotations

import json
from decimal import Decimal

import msgspec
import pytest
from risk_helpers import (
    U,
    default_config,
    deposit,
    new_venue,
    no_fees,
    open_position,
    set_mode,
    with_models,
)

from exchange_sim import jsonview, scenario
from exchange_sim.cli import main
from protocol.messages import Explain, MarginMode, QueryExplain, Rejected, RejectReason

ARTICLE = scenario.ACCOUNT


@pytest.fixture(scope="module")
def article():
    """The built-in scenario, built the way the CLI builds it."""
    v = scenario.build(default_config(), scenario.load(None))
    return v


def test_explain_article_collateral(article):
    """BTC $10,000 − 5 % = 9,500; ETH $5,000 − 5 % = 4,750; collateral and
    equity (no uPnL at entry) = $14,250. Each asset shows its bracket."""
    ex = article.explain(ARTICLE)
    rows = {a.asset: a for a in ex.assets}
    assert sorted(rows) == ["BTC", "ETH"]
    btc, eth = rows["BTC"], rows["ETH"]
    assert btc.balance == 20_000_000 and btc.index_price == 50_000
    assert (btc.value, btc.haircut, btc.counted) == pytest.approx((10_000, 500, 9_500))
    assert (eth.value, eth.haircut, eth.counted) == pytest.approx((5_000, 250, 4_750))
    (slice_,) = btc.brackets
    assert (slice_.up_to, slice_.rate, slice_.value_in_bracket, slice_.haircut) == pytest.approx((1e6, 0.05, 10_000, 500))
    assert ex.collateral == pytest.approx(14_250) and ex.upnl == 0 and ex.equity == pytest.approx(14_250)


def test_explain_article_positions_and_cross_requirement(article):
    """SOL long $50,000: IM 2 % = 1,000, MM 1 % = 500; BNB short $25,000:
    IM 500, MM 250. Cross (the account's mode): IM 1,500, MM 750; impact of
    each = its own MM (cross is additive); ratio 14,250 / 750 = 19.0."""
    ex = article.explain(ARTICLE)
    assert ex.mode is MarginMode.CROSS
    pos = {p.symbol: p for p in ex.positions}
    sol, bnb = pos["SOL-PERP"], pos["BNB-PERP"]
    assert (sol.notional, sol.cross_im, sol.cross_mm, sol.impact, sol.upnl) == pytest.approx((50_000, 1_000, 500, 500, 0))
    assert (bnb.notional, bnb.cross_im, bnb.cross_mm, bnb.impact) == pytest.approx((-25_000, 500, 250, 250))
    assert sol.qty == 2_500 and bnb.qty == -5_000
    assert (ex.im, ex.mm) == pytest.approx((1_500, 750))
    assert ex.margin_ratio == pytest.approx(19.0)


def test_explain_article_scenarios(article):
    """Default profile, c = 0.7, ranges = MM tier rates 1 % (SOL, BNB).
    E_SOL = 50,000 × 1 % = 500, E_BNB = −25,000 × 1 % = −250, T = 250.

    - "SOL −": SOL −1 %, BNB −0.7 % → −(−500 + 175) = 325  ← worst
    - "BNB −": SOL −0.7 %, BNB −1 % → −(−350 + 250) = 100
    - "market −": 500 − 250 = 250; each "+" is the mirror
    - floor 0.1 % × 75,000 = 75. Only SOL, BNB and market are listed.
    """
    ex = article.explain(ARTICLE)
    losses = {s.name: s.loss for s in ex.scenarios}
    assert losses == pytest.approx({"SOL +": -325, "SOL -": 325, "BNB +": -100, "BNB -": 100,
                                    "market +": -250, "market -": 250})
    (worst,) = [s for s in ex.scenarios if s.worst]
    assert worst.name == "SOL -" and worst.moves == pytest.approx({"SOL": -0.01, "BNB": -0.007})
    assert ex.floor == pytest.approx(75) and ex.profile == "default"


def test_explain_article_compare_rows(article):
    """The same holdings under each mode (usable collateral: isolated only
    from USDT — none here; cross and portfolio pool BTC + ETH = 14,250):

    ==========  =====  ===  ======  ======================  =========
    mode        IM     MM   usable  free = usable + uPnL−IM  ratio
    ==========  =====  ===  ======  ======================  =========
    isolated    1,500  750  0       −1,500                  0 / 750 = 0
    cross       1,500  750  14,250  12,750                  19.0
    portfolio   650    325  14,250  13,600                  43.85
    ==========  =====  ===  ======  ======================  =========
    """
    ex = article.explain(ARTICLE)
    rows = {c.mode: c for c in ex.compare}
    assert [c.mode for c in ex.compare] == [MarginMode.ISOLATED, MarginMode.CROSS, MarginMode.PORTFOLIO]
    iso, cross, pm = rows[MarginMode.ISOLATED], rows[MarginMode.CROSS], rows[MarginMode.PORTFOLIO]
    assert (iso.im, iso.mm, iso.usable_collateral, iso.free, iso.margin_ratio) == pytest.approx((1_500, 750, 0, -1_500, 0))
    assert (cross.im, cross.mm, cross.usable_collateral, cross.free) == pytest.approx((1_500, 750, 14_250, 12_750))
    assert cross.margin_ratio == pytest.approx(19.0)
    assert (pm.im, pm.mm, pm.usable_collateral, pm.free) == pytest.approx((650, 325, 14_250, 13_600))
    assert pm.margin_ratio == pytest.approx(14_250 / 325)


def test_explain_equals_query_explain(article):
    (ev,) = article.apply(QueryExplain(account=ARTICLE))
    assert isinstance(ev, Explain) and ev == article.explain(ARTICLE)


def test_explain_unknown_account():
    v = new_venue()
    with pytest.raises(KeyError):
        v.explain(42)
    (ev,) = v.apply(QueryExplain(account=42))
    assert isinstance(ev, Rejected) and ev.reason == RejectReason.UNKNOWN_ACCOUNT


def test_explain_in_portfolio_mode_shows_the_hedge_impacts():
    """The article's account switched to portfolio: MM 325 (worst "SOL −"),
    IM 650. Impacts = MM(all) − MM(without it): without SOL the BNB short
    alone needs 250 → SOL impact 75; without BNB the SOL long alone needs
    500 → BNB impact 325 − 500 = −175 (the short is a hedge)."""
    sc = scenario.load(None)
    sc = msgspec.structs.replace(sc, mode="portfolio")
    v = scenario.build(default_config(), sc)
    ex = v.explain(ARTICLE)
    assert ex.mode is MarginMode.PORTFOLIO and (ex.im, ex.mm) == pytest.approx((650, 325))
    assert ex.margin_ratio == pytest.approx(14_250 / 325)
    impacts = {p.symbol: p.impact for p in ex.positions}
    assert impacts == pytest.approx({"SOL-PERP": 75, "BNB-PERP": -175})


def test_explain_meme_past_its_cap_and_a_usdt_debt():
    """400,000 MEME at $0.25 = $100,000: 30 % on the first $50,000 (15,000)
    and 100 % on the next $50,000 → counted 35,000, two bracket rows. A
    USDT debt (−$1,000: a long 1 BTC closed $1,000 lower, fees off) counts in
    full, with no brackets."""
    v = new_venue()
    deposit(v, 1, MEME=400_000)
    open_position(v, 1, "BTC-PERP", 1_000)
    open_position(v, 1, "BTC-PERP", -1_000, price=590_000)
    ex = v.explain(1)
    rows = {a.asset: a for a in ex.assets}
    meme, usdt = rows["MEME"], rows["USDT"]
    assert (meme.value, meme.haircut, meme.counted) == pytest.approx((100_000, 65_000, 35_000))
    flat = [x for b in meme.brackets for x in (b.rate, b.value_in_bracket, b.haircut)]
    assert len(meme.brackets) == 2 and flat == pytest.approx([0.3, 50_000, 15_000, 1.0, 50_000, 50_000])
    assert usdt.balance == -1_000 * U and (usdt.value, usdt.haircut, usdt.counted) == pytest.approx((-1_000, 0, -1_000))
    assert usdt.brackets == []
    assert [b.up_to for b in meme.brackets] == [50_000, None]  # None: the last bracket has no bound
    assert ex.collateral == pytest.approx(34_000) and ex.positions == [] and ex.margin_ratio is None
    assert msgspec.json.decode(msgspec.json.encode(ex), type=Explain) == ex  # JSON has no inf


def test_explain_isolated_account():
    """Isolated, 10,000 USDT, long 0.5 BTC at $60,000: allocation 300 shows
    on the position; equity = wallet 9,700 + allocation 300 = 10,000."""
    v = new_venue()
    deposit(v, 1, USDT=10_000)
    set_mode(v, 1, "isolated")
    open_position(v, 1, "BTC-PERP", 500)
    ex = v.explain(1)
    (pos,) = ex.positions
    assert pos.isolated_margin == pytest.approx(300)
    assert ex.collateral == pytest.approx(9_700) and ex.equity == pytest.approx(10_000)
    assert ex.margin_ratio == pytest.approx(300 / 150)


def test_explain_with_a_custom_model_that_lists_no_scenarios():
    """The toy model (MM = 10 % of gross, no scenario list) in portfolio
    mode: explain still works; no scenario rows; MM and the impacts come from
    the toy (1 BTC = $60,000 → 6,000)."""
    v = new_venue(with_models(no_fees(default_config()), portfolio="toy_model:ToyModel"))
    deposit(v, 1, USDT=10_000)
    set_mode(v, 1, "portfolio")
    open_position(v, 1, "BTC-PERP", 1_000)
    ex = v.explain(1)
    assert ex.scenarios == [] and ex.mm == pytest.approx(6_000)
    assert [p.impact for p in ex.positions] == pytest.approx([6_000])
    assert {c.mode: c.mm for c in ex.compare}[MarginMode.PORTFOLIO] == pytest.approx(6_000)
    (ev,) = v.apply(QueryExplain(account=1))
    assert isinstance(ev, Explain)


# --------------------------------------------------------------------- CLI


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    rc = main(["explain", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cli_explain_text(capsys):
    """The default rendering shows the article's figures: each asset's
    counted value, collateral 14,250, the worst scenario marked, ratio
    1900.0 %, and the three-mode comparison."""
    rc, out, err = run_cli(capsys)
    assert rc == 0 and err == ""
    assert "14,250.00" in out and "9,500.00" in out and "4,750.00" in out
    (worst_line,) = [line for line in out.splitlines() if "<- worst" in line]
    assert worst_line.split()[:3] == ["SOL", "-", "325.00"]
    assert "IM $1,500.00   MM $750.00   margin ratio (equity / MM) 1,900.0%" in out
    modes = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip().split(" ")[0] in
             ("isolated", "cross", "portfolio") and "$" not in line}
    assert modes["portfolio"][:4] == ["650.00", "325.00", "14,250.00", "13,600.00"]
    assert modes["cross"][:2] == ["1,500.00", "750.00"]


def test_cli_explain_json_matches_the_venue(capsys, article):
    rc, out, _ = run_cli(capsys, "--json")
    assert rc == 0
    printed = json.loads(out)
    assert printed.pop("units").startswith("USD money figures are decimal strings")
    assert printed == jsonview.view(article.explain(ARTICLE), 6) and printed["msg"] == "Explain"


def test_cli_explain_stress_profile(capsys):
    """Stress: SOL 14 %, BNB 12 %, c = 0.8, floor 1 %, IM = 1.3 × MM.
    E_SOL = 7,000, E_BNB = −3,000, T = 4,000; "SOL −" loses
    0.2 × 7,000 + 0.8 × 4,000 = 4,600 (BNB: 2,600; market: 4,000; floor 750)
    → portfolio MM 4,600, IM 5,980; the cross figures do not change."""
    rc, out, _ = run_cli(capsys, "--profile", "stress", "--json")
    assert rc == 0
    ex = json.loads(out)
    rows = {c["mode"]: c for c in ex["compare"]}
    assert ex["profile"] == "stress" and Decimal(ex["floor"]) == 750
    assert (Decimal(rows["portfolio"]["mm"]), Decimal(rows["portfolio"]["im"])) == (4_600, 5_980)
    assert (Decimal(rows["cross"]["mm"]), Decimal(rows["cross"]["im"])) == (750, 1_500)
    assert [s["name"] for s in ex["scenarios"] if s.get("worst")] == ["SOL -"]
    rc, text, _ = run_cli(capsys, "--profile", "stress")
    assert rc == 0 and "portfolio profile: stress" in text and "4,600.00" in text and "5,980.00" in text


def test_cli_explain_scenario_file_and_config(capsys, tmp_path):
    """A scenario file (portfolio mode, the article's Step 3 hedge: long 80
    ETH at $3,000, short 2 BTC at $60,000, 10,000 USDT) and a config file
    with BTC's haircut removed: MM 780, IM 1,560 (see test_article)."""
    sc = tmp_path / "hedge.toml"
    sc.write_text('mode = "portfolio"\n[prices]\nBTC = 60000\nETH = "3000"\n[holdings]\nUSDT = "10000"\nBTC = "1"\n'
                  '[[positions]]\nsymbol = "ETH-PERP"\nqty = "80"\n'
                  '[[positions]]\nsymbol = "BTC-PERP"\nqty = "-2"\nentry = "61000"\n')
    from exchange_sim.config import default_text

    cfg_text = default_text().replace("haircut = [[1000000, 0.05], [5000000, 0.10], [inf, 0.20]]",
                                      "haircut = [[inf, 0.0]]", 1)
    assert cfg_text != default_text()
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(cfg_text)
    rc, out, _ = run_cli(capsys, str(sc), "--config", str(cfg), "--json")
    assert rc == 0
    ex = json.loads(out)
    assert ex["mode"] == "portfolio" and (Decimal(ex["mm"]), Decimal(ex["im"])) == (780, 1_560)
    # short 2 BTC entered at $61,000, mark $60,000: uPnL +2,000; BTC counts in full now
    assert Decimal(ex["upnl"]) == 2_000 and Decimal(ex["collateral"]) == 70_000


@pytest.mark.parametrize(
    "text, needle",
    [
        (None, "No such file"),
        ("mode = [", "bad scenario file"),
        ("colour = 'red'\n", "bad scenario file"),
        ('[holdings]\nBTC = "abc"\n', "not a decimal"),
        ('[holdings]\nBTC = "NaN"\n', "not a decimal"),
        ('[prices]\nSOL = "1e400"\n', "price"),
        ('[holdings]\nDOGE = "1"\n', "unknown asset"),
        ('[holdings]\nUSDT = "1000"\n[[positions]]\nsymbol = "DOGE-PERP"\nqty = "1"\n', "unknown symbol"),
        ('[prices]\nSOL = 150\n[holdings]\nUSDT = "1000"\n[[positions]]\nsymbol = "SOL-PERP"\nqty = "0.05"\n', "lots"),
        ('[prices]\nBTC = 60000\n[holdings]\nUSDT = "10"\n[[positions]]\nsymbol = "BTC-PERP"\nqty = "10"\n',
         "insufficient_margin"),
        ('mode = "hedge"\n', "hedge"),
    ],
)
def test_cli_explain_bad_scenario_exits_2_with_a_message(capsys, tmp_path, text, needle):
    path = tmp_path / "sc.toml"
    if text is not None:
        path.write_text(text)
    rc, out, err = run_cli(capsys, str(path))
    assert rc == 2 and out == ""
    assert err.startswith("exchange-sim: ") and needle in err and "Traceback" not in err


def test_cli_explain_unknown_profile(capsys):
    rc, _, err = run_cli(capsys, "--profile", "nope")
    assert rc == 2 and err == "exchange-sim: unknown profile 'nope'; valid: default, stress\n"

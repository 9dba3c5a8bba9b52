"""`exchange-sim demo --fast`: the narrated story's figures are the venue's own,
and match the hand arithmetic of the source article's numbers."""

import io

from exchange_sim import demo


def test_demo_tells_the_story_with_the_venues_figures():
    out = io.StringIO()
    figures = demo.run(fast=True, out=out, web_hint=False, default_ports=False)
    text = out.getvalue()

    # warm-up: both bots traded
    assert "maker: Stats(" in text and "taker: Stats(" in text

    # 1-2. $10,000 of BTC and $5,000 of ETH after 5% haircuts = $14,250, less the
    # $37.50 of taker fees (0.05% of $75,000) owed in USDT: $14,212.50 of collateral
    ex = figures["story"]
    assert round(ex.collateral, 2) == 14_212.50
    assert "14,212.50" in text
    # cross: 2% IM of $50,000 SOL + $25,000 BNB = $1,500, 1% MM = $750
    assert (round(ex.im, 2), round(ex.mm, 2)) == (1_500.00, 750.00)
    # 3. portfolio: worst "SOL -": 1% x 50,000 - 0.7 x 1% x 25,000 = 325; IM x2 = 650
    rows = {r.mode.value: r for r in ex.compare}
    assert (round(rows["portfolio"].mm, 2), round(rows["portfolio"].im, 2)) == (325.00, 650.00)
    assert rows["isolated"].usable_collateral == 0.0
    assert "needs IM $   650.00" in text

    # 4. hedge: ETH long $100k alone 0.5% = $500; with a $60k BTC short the worst
    # scenario "ETH -" loses 500 - 0.7 x 0.5% x 60,000 = $290; cross would ask $800
    assert figures["hedge"] == (500.0, 290.0, 800.0)
    assert "MM $290.00 (cross would ask $800.00)" in text

    # 5. one SOL crash liquidates positions in all five books, worst impact first
    cascade = figures["cascade"]
    assert set(cascade) == {"BTC-PERP", "ETH-PERP", "SOL-PERP", "BNB-PERP", "MEME-PERP"}
    assert "closed positions in 5 books" in text

    # 6. the stablecoin buffer survives what liquidates the MEME-backed account
    assert demo.BUFFER_MEME in figures["buffer_liquidated"]
    assert demo.BUFFER_USDT not in figures["buffer_liquidated"]
    assert "(USDT collateral): survives" in text and "(MEME collateral): LIQUIDATED" in text

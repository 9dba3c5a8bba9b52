"""The venue page against a live server, in headless Chromium: the depth chart
shows resting orders placed by a client; an admin price shock's liquidation
cascade appears in the order the venue emitted it; the page says when the
venue is gone and recovers when it comes back."""

from __future__ import annotations

import socket
import threading

import pytest
from integration_helpers import ADMIN_KEY, KEYS, start_server

from clients import Client
from exchange_sim import config
from exchange_sim.web.bridge import LIQUIDATION_EVENTS
from protocol import messages as m

test_web = pytest.importorskip("test_web", reason="tests/test_web.py holds the browser fixture")
browser = test_web.browser
ARTIFACTS = test_web.ARTIFACTS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _student_cascade(page, maker: Client, student: Client, admin: Client) -> list:
    """The cascade both live tests watch: the maker rests 12 bid levels the
    liquidation can sell into and 12 asks; the student ($10,000 + 0.5 BTC)
    buys 3 BTC; BTC falls 18.2%: equity ~$460 < MM ~$736. Returns the
    shock's events once the page's cascade table shows every step of it, in
    the venue's order."""
    mark = 600_000
    for i in range(1, 13):
        maker.request(m.NewOrder(account=1, symbol="BTC-PERP", side=m.Side.BUY, qty=400, price=mark - 2_000 * i))
        maker.request(m.NewOrder(account=1, symbol="BTC-PERP", side=m.Side.SELL, qty=100, price=mark + 100 * i))
    page.wait_for_function("document.getElementById('depth').dataset.bidLevels === '12'", timeout=10_000)
    assert page.locator("#depth").get_attribute("data-ask-levels") == "12"
    maker.request(m.NewOrder(account=1, symbol="BTC-PERP", side=m.Side.SELL, qty=3_000, price=mark + 20))
    student.request(m.NewOrder(account=4, symbol="BTC-PERP", side=m.Side.BUY, qty=3_000, price=mark + 20,
                               tif=m.TimeInForce.IOC))
    events = admin.request(m.ShockPrice(asset="BTC", change_bps=-1820)).events
    expected = test_web.cascade_steps(events)
    assert expected and expected[0] == (4, "started", "")
    n_rows = sum(isinstance(e, LIQUIDATION_EVENTS) for e in events)  # one table row each, headers aside
    page.wait_for_function(f"document.querySelectorAll('#cascade-table tbody tr:not(.liq-head)').length >= {n_rows}",
                           timeout=10_000)
    assert test_web.cascade_shown(page) == expected
    return events


@pytest.mark.deadline(180)
def test_live_page_shows_depth_and_the_cascade_then_survives_a_restart(browser, tmp_path):
    from exchange_sim.web.bridge import WebApp
    from exchange_sim.web.sources import LiveSource

    ports = (_free_port(), _free_port())
    eps = tuple(f"tcp://127.0.0.1:{p}" for p in ports)
    args = ("--orders", eps[0], "--market-data", eps[1])
    sp = start_server(tmp_path, args=args)
    src = LiveSource(config.default(), eps[0], eps[1], account=4, api_key=ADMIN_KEY, admin=True)
    app = WebApp(src, port=0)
    t = threading.Thread(target=app.serve_forever, daemon=True)
    t.start()
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    try:
        page.goto(app.url)
        page.wait_for_function("document.getElementById('conn').textContent === 'connected'", timeout=20_000)
        maker = Client(eps[0], 1, KEYS[1])
        student = Client(eps[0], 4, KEYS[4])
        admin = Client(eps[0], 0, ADMIN_KEY)
        events = _student_cascade(page, maker, student, admin)
        page.wait_for_function("document.getElementById('acct-id').textContent === '4'", timeout=5_000)
        page.wait_for_function("document.querySelector('#tape tbody tr.liq') !== null", timeout=5_000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "web-live-cascade.png"), full_page=True)
        for c in (maker, student, admin):
            c.close(logout=False)

        # the venue goes away: the page says so; it comes back: the page reconnects
        sp.stop()
        page.wait_for_function("document.getElementById('conn').textContent === 'venue unreachable'", timeout=20_000)
        assert "venue unreachable" in page.locator("#banner").inner_text()
        page.screenshot(path=str(ARTIFACTS / "web-live-unreachable.png"))
        sp = start_server(tmp_path, args=args)
        page.wait_for_function("document.getElementById('conn').textContent === 'connected'", timeout=30_000)
        assert page.locator("#banner").is_hidden()
    finally:
        app.shutdown()
        t.join(timeout=5)
        sp.stop()


@pytest.mark.deadline(150)
def test_live_page_waits_for_an_account_that_is_not_open_yet(browser, tmp_path):
    """Issue 11: account 103 chosen before the venue opens it. The page says so,
    keeps the market data and the cascade flowing on the same session, shows
    mark and index from the first connect, and shows 103 once it opens."""
    from exchange_sim.web.bridge import WebApp
    from exchange_sim.web.sources import LiveSource

    sp = start_server(tmp_path)
    src = LiveSource(config.default(), sp.orders, sp.market_data, account=1, api_key=ADMIN_KEY, admin=True)
    app = WebApp(src, port=0)
    t = threading.Thread(target=app.serve_forever, daemon=True)
    t.start()
    maker = Client(sp.orders, 1, KEYS[1])
    student = Client(sp.orders, 4, KEYS[4])
    admin = Client(sp.orders, 0, ADMIN_KEY)
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    try:
        (info,) = [e for e in admin.call(m.QueryInstruments()) if isinstance(e, m.Instruments)]
        btc = next(a.index_price for a in info.assets if a.name == "BTC") / m.PRICE_SCALE
        tick = float(next(i.tick_size for i in info.instruments if i.symbol == "BTC-PERP"))
        page.goto(app.url)
        page.wait_for_function("document.getElementById('conn').textContent === 'connected'", timeout=20_000)
        page.select_option("#symbol", "BTC-PERP")
        # no price has moved since the venue started: mark and index come from the connect-time query
        page.wait_for_function(f"document.getElementById('q-mark').textContent === {f'{btc:,.2f}'!r}", timeout=10_000)
        assert page.locator("#q-index").inner_text() == f"{btc:,.2f}"

        page.fill("#account", "103")
        page.dispatch_event("#account", "change")
        page.wait_for_function("document.getElementById('acct-note').textContent === 'account 103 is not open yet'",
                               timeout=10_000)
        assert page.locator("#acct-id").inner_text() == "103"
        assert page.locator("#banner").is_hidden()  # the venue is fine: only the account is missing
        page.screenshot(path=str(ARTIFACTS / "web-live-account-missing.png"), full_page=True)

        # the first cascade, while the page waits for 103
        events = _student_cascade(page, maker, student, admin)
        assert page.locator("#cascade-table tr.liq-head").first.inner_text().startswith("account 4 · ratio ")
        (shocked,) = [e for e in events if isinstance(e, m.MarkPrice) and e.symbol == "BTC-PERP"]
        page.wait_for_function(f"document.getElementById('q-mark').textContent === {f'{shocked.mark * tick:,.2f}'!r}",
                               timeout=10_000)
        assert page.locator("#q-index").inner_text() == f"{shocked.index / m.PRICE_SCALE:,.2f}"
        assert page.locator("#acct-note").inner_text() == "account 103 is not open yet"

        # 103 opens: the page picks it up, on the same venue session
        admin.request(m.Deposit(account=103, asset="USDT", amount=2_500 * 10**6))
        page.wait_for_function("document.getElementById('f-equity').textContent === '2,500.00'", timeout=10_000)
        assert page.locator("#acct-note").is_hidden()
        assert page.locator("#f-ratio").inner_text() == "no positions"
        assert src.attempts == 1, "the bridge must not have dropped and reopened its venue session"
        page.screenshot(path=str(ARTIFACTS / "web-live-account-opened.png"), full_page=True)
    finally:
        for c in (maker, student, admin):
            c.close(logout=False)
        app.shutdown()
        t.join(timeout=5)
        sp.stop()

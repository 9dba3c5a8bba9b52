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
        mark = 600_000
        for i in range(1, 13):  # 12 bid levels the liquidation can sell into, 12 asks above
            maker.request(m.NewOrder(account=1, symbol="BTC-PERP", side=m.Side.BUY, qty=400, price=mark - 2_000 * i))
            maker.request(m.NewOrder(account=1, symbol="BTC-PERP", side=m.Side.SELL, qty=100, price=mark + 100 * i))
        page.wait_for_function("document.getElementById('depth').dataset.bidLevels === '12'", timeout=10_000)
        assert page.locator("#depth").get_attribute("data-ask-levels") == "12"

        # the student ($10,000 + 0.5 BTC) buys 3 BTC; BTC then falls 18.2%: equity ~$460 < MM ~$736
        maker.request(m.NewOrder(account=1, symbol="BTC-PERP", side=m.Side.SELL, qty=3_000, price=mark + 20))
        student.request(m.NewOrder(account=4, symbol="BTC-PERP", side=m.Side.BUY, qty=3_000, price=mark + 20,
                                   tif=m.TimeInForce.IOC))
        events = admin.request(m.ShockPrice(asset="BTC", change_bps=-1820)).events
        expected = test_web.cascade_steps(events)
        assert expected and expected[0] == (4, "started", "")
        n_rows = sum(isinstance(e, LIQUIDATION_EVENTS) for e in events)  # one table row each
        page.wait_for_function(f"document.querySelectorAll('#cascade-table tbody tr').length >= {n_rows}",
                               timeout=10_000)
        assert test_web.cascade_shown(page) == expected
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

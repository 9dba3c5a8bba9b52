"""The venue page in a real headless browser (Debian's chromium, driven by
Playwright with its executable path pointed at it; nothing downloads a
browser). Here the page replays a journal; tests/integration/test_web_live.py
watches a live venue.

The browser is installed by .ci/run; on a machine without it these tests are
skipped, except under CI where a missing browser is a failure."""

from __future__ import annotations

import json
import os
import shutil
import threading
import urllib.request
from pathlib import Path

import pytest

from exchange_sim import Venue, journal, replay
from protocol import messages as m

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"]


def _need_browser():
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        playwright_ok = False
    else:
        playwright_ok = True
    if CHROMIUM and playwright_ok:
        return
    if os.environ.get("CI"):
        pytest.fail("CI must provide Debian's chromium and the playwright package (.ci/run installs them)")
    pytest.skip("needs Debian's chromium and the playwright package (see .ci/run)")


@pytest.fixture
def browser():
    _need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            yield b
        finally:
            b.close()


def cascade_steps(events) -> list[tuple]:
    """(account, step, symbol) of each liquidation start and slice, in order:
    what the page's cascade table must list."""
    return [(e.account, "started", "") if isinstance(e, m.LiquidationStarted) else (e.account, "slice", e.symbol)
            for e in events if isinstance(e, (m.LiquidationStarted, m.LiquidationSlice))]


def cascade_shown(page) -> list[tuple]:
    """The same triples, read from the page's cascade table."""
    rows = page.locator("#cascade-table tbody tr")
    shown = []
    for i in range(rows.count()):
        cells = rows.nth(i).locator("td").all_inner_texts()
        if cells[2] in ("started", "slice"):
            shown.append((int(cells[1]), cells[2], cells[3] if cells[2] == "slice" else ""))
    return shown


class _JournaledVenue(Venue):
    """Journals each command before applying it, as the server does."""

    def __init__(self, directory):
        super().__init__()
        self.journal = journal.Journal(directory)
        self.clock = 1_800_000_000_000_000_000

    def apply(self, command, ts=None):
        self.clock += 50_000_000  # 50 ms of venue time per command
        self.journal.append(self.seq + 1, self.clock, command)
        return super().apply(command, self.clock)


def _crash_data_dir(directory: Path) -> None:
    """A maker quotes SOL-PERP; two leveraged longs; SOL falls 12% twice."""
    v = _JournaledVenue(directory)
    usdt = 10**6
    v.apply(m.Deposit(account=7, asset="USDT", amount=5_000_000 * usdt))
    for acct, cash in ((1, 2_000), (2, 3_000)):
        v.apply(m.Deposit(account=acct, asset="USDT", amount=cash * usdt))
    mark = v.instruments["SOL-PERP"].mark  # 150.000 = 150000 ticks

    def quote(center):
        v.apply(m.CancelAll(account=7))
        for i in range(1, 30):
            v.apply(m.NewOrder(account=7, symbol="SOL-PERP", side=m.Side.BUY, qty=300, price=center - 300 * i))
            v.apply(m.NewOrder(account=7, symbol="SOL-PERP", side=m.Side.SELL, qty=300, price=center + 300 * i))

    quote(mark)
    for acct, lots in ((1, 1000), (2, 1400)):  # $15,000 and $21,000 of SOL: 7.5x and 7x
        v.apply(m.NewOrder(account=acct, symbol="SOL-PERP", side=m.Side.BUY, qty=lots, type=m.OrderType.MARKET))
    for _ in range(2):
        v.apply(m.ShockPrice(asset="SOL", change_bps=-1200))
        quote(v.instruments["SOL-PERP"].mark)
    v.journal.close()


@pytest.fixture
def replay_page(tmp_path):
    from exchange_sim.web.bridge import WebApp
    from exchange_sim.web.sources import ReplaySource

    _crash_data_dir(tmp_path)
    app = WebApp(ReplaySource(tmp_path, account=1, speed=200), port=0)
    t = threading.Thread(target=app.serve_forever, daemon=True)
    t.start()
    yield app, tmp_path
    app.shutdown()
    t.join(timeout=5)


def _post(url: str, body: dict) -> int:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_replay_page_shows_depth_and_the_cascade_in_venue_order(browser, replay_page):
    app, data_dir = replay_page
    expected = cascade_steps(ev for _, events, _ in replay.replay(data_dir, from_start=True) for ev in events)
    assert expected, "the scenario must liquidate someone"

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app.url)
    page.wait_for_selector("#symbol option", state="attached")
    page.select_option("#symbol", "SOL-PERP")
    total = len(journal.read(data_dir)[0])
    assert _post(app.url + "api/replay", {"action": "seek", "position": total}) == 204
    page.wait_for_function(f"document.getElementById('rp-pos').textContent === '{total} / {total}'", timeout=15_000)
    page.wait_for_function("Number(document.getElementById('depth').dataset.bidLevels) > 0", timeout=10_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-replay.png"), full_page=True)

    assert cascade_shown(page) == expected
    # the depth chart shows the maker's 29 bid levels around the last mark
    assert page.locator("#depth").get_attribute("data-bid-levels") == "29"
    assert page.locator("#depth path.depth-bids").count() == 1
    assert "replay" in page.locator("#mode-badge").inner_text()


def test_replay_controls_refuse_bad_input(replay_page):
    app, _ = replay_page
    assert _post(app.url + "api/replay", {"action": "rewind"}) == 400
    assert _post(app.url + "api/replay", {"action": "seek"}) == 400
    assert _post(app.url + "api/account", {"account": "x"}) == 400
    assert _post(app.url + "api/replay", {"action": "step"}) == 204


def test_page_says_when_the_venue_is_unreachable(browser):
    """A live page pointed at a port where nothing listens says so plainly."""
    from exchange_sim import config
    from exchange_sim.web.bridge import WebApp
    from exchange_sim.web.sources import LiveSource

    src = LiveSource(config.default(), "tcp://127.0.0.1:9", "tcp://127.0.0.1:9", 1, "admin-key-change-me")
    app = WebApp(src, port=0)
    t = threading.Thread(target=app.serve_forever, daemon=True)
    t.start()
    try:
        page = browser.new_page()
        page.goto(app.url)
        page.wait_for_function("document.getElementById('conn').textContent === 'venue unreachable'", timeout=20_000)
        assert "venue unreachable at tcp://127.0.0.1:9" in page.locator("#banner").inner_text()
    finally:
        app.shutdown()
        t.join(timeout=5)

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
    rows = page.locator("#cascade-table tbody tr:not(.liq-head)")
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


# ------------------------------------------------------------ issue 11: the page read as a teacher projects it


def _wait_pos(page, position: int, total: int) -> None:
    page.wait_for_function(f"document.getElementById('rp-pos').textContent === '{position} / {total}'",
                           timeout=15_000)


def _boxes(page, selector: str) -> list[dict]:
    return page.eval_on_selector_all(selector, "els => els.map(e => { const r = e.getBoundingClientRect();"
                                               " return {x: r.x, y: r.y, w: r.width, h: r.height, text: e.textContent}; })")


def _overlap(a: dict, b: dict) -> bool:
    return a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]


def _inside(inner: dict, outer: dict) -> bool:
    return (inner["x"] >= outer["x"] - 0.5 and inner["y"] >= outer["y"] - 0.5
            and inner["x"] + inner["w"] <= outer["x"] + outer["w"] + 0.5
            and inner["y"] + inner["h"] <= outer["y"] + outer["h"] + 0.5)


def test_the_page_formats_margin_ratios_exactly_as_python_does(browser, replay_page):
    """static/app.js's ratioText is protocol.units.ratio_text: the same string for
    the same float, ties (2.25 → "2.2", half to even) and separators included."""
    import random

    from protocol.units import ratio_text

    app, _ = replay_page
    rng = random.Random(11)
    values = [0.8034, 11.36, None, float("inf"), 0.0, -0.0, 1.0, 1.2, 1.5, -12.3456, 123456.789, 1e-9, 0.99999,
              1e17, 1e25, -0.0004]
    values += [j / 4 / 100 for j in range(1, 400) if (j / 4 / 100) * 100 == j / 4]  # exact ties at one decimal
    values += [rng.uniform(-5, 50) for _ in range(500)] + [10 ** rng.uniform(-4, 6) for _ in range(500)]
    page = browser.new_page()
    page.goto(app.url)
    page.wait_for_selector("#symbol option", state="attached")
    shown = page.evaluate("vals => vals.map(ratioText)", values)
    expected = [ratio_text(v) for v in values]
    assert [(v, s) for v, s, e in zip(values, shown, expected) if s != e] == []
    assert expected[:3] == ["80.3%", "1,136.0%", "no positions"]


def test_replay_shows_the_venues_ratio_text_and_grouped_liquidations(browser, replay_page):
    """Mid-replay the ratio figure is ratio_text of the venue's own ratio; at the
    end each liquidation is one header row (account, ratio before → after, steps,
    fund / ADL use) with its steps under it, and a closed-out account reads
    "no positions"."""
    from protocol.units import ratio_text

    app, data_dir = replay_page
    records = journal.read(data_dir)[0]
    total = len(records)
    shock = next(i for i, r in enumerate(records) if isinstance(r.command, m.ShockPrice))
    venue = Venue(replay.data_config(data_dir))
    for rec in records[:shock]:
        venue.apply(rec.command, rec.ts)
    ratio_before_shock = venue.explain(2).margin_ratio
    assert ratio_before_shock is not None

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app.url)
    page.wait_for_selector("#symbol option", state="attached")
    page.fill("#account", "2")
    page.dispatch_event("#account", "change")
    page.wait_for_function("document.getElementById('acct-id').textContent === '2'", timeout=10_000)
    assert _post(app.url + "api/replay", {"action": "seek", "position": shock}) == 204
    _wait_pos(page, shock, total)
    page.wait_for_function(f"document.getElementById('f-ratio').textContent === {ratio_text(ratio_before_shock)!r}",
                           timeout=10_000)

    assert _post(app.url + "api/replay", {"action": "seek", "position": total}) == 204
    _wait_pos(page, total, total)
    # the expected groups, from the journal's own events
    groups: list[dict] = []
    last: dict[int, dict] = {}
    for _, events, _ in replay.replay(data_dir, from_start=True):
        for ev in events:
            if isinstance(ev, m.LiquidationStarted):
                g = last[ev.account] = {"account": ev.account, "before": ev.margin_ratio, "after": None, "steps": 0,
                                        "fund": False, "adl": 0}
                groups.append(g)
            elif isinstance(ev, m.LiquidationFinished):
                last[ev.account]["after"] = ev.margin_ratio
            elif isinstance(ev, LIQUIDATION_STEPS) and ev.account in last:
                last[ev.account]["steps"] += 1
                last[ev.account]["fund"] |= isinstance(ev, (m.InsuranceTakeover, m.BankruptcyCovered))
                last[ev.account]["adl"] += isinstance(ev, m.AutoDeleverage)
    assert len(groups) >= 2
    heads = page.locator("#cascade-table tbody tr.liq-head")
    page.wait_for_function(f"document.querySelectorAll('#cascade-table tbody tr.liq-head').length === {len(groups)}",
                           timeout=10_000)
    for i, g in enumerate(groups):
        text = heads.nth(i).inner_text()
        steps = f"{g['steps']} step" + ("" if g["steps"] == 1 else "s")
        assert text.startswith(f"account {g['account']} · ratio {ratio_text(g['before'])} → {ratio_text(g['after'])}"
                               f" · {steps} · insurance fund: "), text
        assert ("not used" in text.split("insurance fund: ")[1].split(" · ")[0]) == (not g["fund"])
        assert text.endswith("ADL: not used") == (g["adl"] == 0)
    # under each header: that liquidation's rows only, from its "started" to its "finished"
    table = page.eval_on_selector_all("#cascade-table tbody tr", "trs => trs.map(tr => tr.classList.contains('liq-head')"
                                      " ? 'HEAD' : [...tr.cells].map(td => td.textContent))")
    blocks, cur = [], None
    for row in table:
        if row == "HEAD":
            cur = []
            blocks.append(cur)
        elif cur is not None:
            cur.append(row)
    for g, block in zip(groups, blocks):
        assert block[0][2] == "started" and block[-1][2] == "finished"
        assert {int(r[1]) for r in block} == {g["account"]}
        assert len(block) == g["steps"] + 2
    page.wait_for_function("document.getElementById('acct-id').textContent === '2'", timeout=5_000)
    assert page.locator("#f-ratio").inner_text() == "no positions"  # liquidated to flat: no ratio, not ∞
    page.screenshot(path=str(ARTIFACTS / "web-replay-groups.png"), full_page=True)


LIQUIDATION_STEPS = (m.LiquidationSlice, m.InsuranceTakeover, m.AutoDeleverage, m.CollateralConversion,
                     m.BankruptcyCovered)


def test_ratio_axis_is_logarithmic_and_threshold_labels_do_not_overlap(browser, replay_page):
    app, data_dir = replay_page
    total = len(journal.read(data_dir)[0])
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app.url)
    page.wait_for_selector("#symbol option", state="attached")
    assert _post(app.url + "api/replay", {"action": "seek", "position": total // 2}) == 204
    _wait_pos(page, total // 2, total)
    page.wait_for_function("document.querySelectorAll('#ratio text.threshold-label').length === 3", timeout=10_000)
    assert page.locator("#ratio").get_attribute("data-scale") == "log"
    ticks = {t["text"]: t for t in _boxes(page, "#ratio text.tick")}
    y = {k: page.eval_on_selector_all("#ratio text.tick", f"els => els.filter(e => e.textContent === {k!r})"
                                      ".map(e => Number(e.getAttribute('y')))")[0] for k in ("50.0%", "100.0%", "200.0%")}
    assert y["50.0%"] - y["100.0%"] == pytest.approx(y["100.0%"] - y["200.0%"], abs=0.01)  # a doubling = one step
    assert set(ticks) >= {"50.0%", "100.0%", "200.0%", "500.0%"}
    labels = _boxes(page, "#ratio text.threshold-label")
    assert [lb["text"] for lb in labels] == ["liquidation 100.0%", "reduce-only 120.0%", "warning 150.0%"]
    svg = _boxes(page, "#ratio")[0]
    for i, a in enumerate(labels):
        assert _inside(a, svg), a
        for b in labels[i + 1:]:
            assert not _overlap(a, b), (a, b)
    # the modes chart says which bar is which; the charts have axis titles
    assert page.locator("#modes text.legend").all_text_contents()[:2] == ["usable collateral", "initial margin (IM)"]
    assert "price (USDT)" in page.locator("#depth text.axis-title").all_text_contents()
    assert "venue time" in page.locator("#ratio text.axis-title").all_text_contents()
    page.locator("#acct").screenshot(path=str(ARTIFACTS / "web-ratio-log.png"))


def _one_sided_data_dir(directory: Path) -> None:
    """Only bids, all below the mark: the mark is the depth chart's right edge."""
    v = _JournaledVenue(directory)
    v.apply(m.Deposit(account=7, asset="USDT", amount=5_000_000 * 10**6))
    mark = v.instruments["SOL-PERP"].mark
    for i in range(1, 15):
        v.apply(m.NewOrder(account=7, symbol="SOL-PERP", side=m.Side.BUY, qty=300, price=mark - 300 * i))
    v.journal.close()


def test_one_sided_book_keeps_the_mark_label_inside_and_prices_show_from_the_start(browser, tmp_path):
    from exchange_sim.web.bridge import WebApp
    from exchange_sim.web.sources import ReplaySource

    _one_sided_data_dir(tmp_path)
    src = ReplaySource(tmp_path, account=103)
    app = WebApp(src, port=0)
    t = threading.Thread(target=app.serve_forever, daemon=True)
    t.start()
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(app.url)
        page.wait_for_selector("#symbol option", state="attached")
        page.select_option("#symbol", "SOL-PERP")
        # before the first journal record: the venue's starting mark and index, never "–"
        mark = src.venue.instruments["SOL-PERP"].mark * float(src.venue.instruments["SOL-PERP"].tick_size)
        page.wait_for_function(f"document.getElementById('q-mark').textContent === {f'{mark:,.2f}'!r}",
                               timeout=10_000)
        assert page.locator("#q-index").inner_text() == f"{mark:,.2f}"
        assert page.locator("#acct-note").inner_text() == "account 103 is not open yet"
        total = len(journal.read(tmp_path)[0])
        assert _post(app.url + "api/replay", {"action": "seek", "position": total}) == 204
        _wait_pos(page, total, total)
        page.wait_for_function("document.getElementById('depth').dataset.bidLevels === '14'", timeout=10_000)
        assert page.locator("#depth").get_attribute("data-ask-levels") == "0"
        label = _boxes(page, "#depth text.mark-label")[0]
        assert label["text"] == f"mark {mark:,.2f}"
        assert _inside(label, _boxes(page, "#depth")[0]), label
        page.locator("#market").screenshot(path=str(ARTIFACTS / "web-depth-one-sided.png"))
    finally:
        app.shutdown()
        t.join(timeout=5)


def test_web_port_clash_names_the_address_without_a_traceback(tmp_path):
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "exchange_sim.cli", "web", "--port", str(port),
                            "--orders", "tcp://127.0.0.1:9", "--market-data", "tcp://127.0.0.1:9"],
                           capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}: address already in use" in r.stderr
    assert "Traceback" not in r.stderr


def test_unreachable_venue_is_logged_once_over_several_retries(caplog):
    import logging
    import time

    from exchange_sim import config
    from exchange_sim.web.sources import LiveSource

    src = LiveSource(config.default(), "tcp://127.0.0.1:9", "tcp://127.0.0.1:9", 1, "admin-key-change-me")
    with caplog.at_level(logging.INFO, logger="exchange_sim.web"):
        src.start()
        try:
            deadline = time.monotonic() + 40
            while src.attempts < 4 and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            src.stop()
    assert src.attempts >= 4, "the source must keep retrying"
    lines = [r.getMessage() for r in caplog.records if "venue unreachable" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "tcp://127.0.0.1:9" in lines[0]


def test_live_page_subscribes_to_the_channels_the_server_publishes_on():
    """The live page reads trades, marks and public liquidation notices off
    the PUB socket. Its subscriptions are the prefixes the server really
    puts on those events (it once asked for ``.liquidationnotice`` while the
    server published on ``.liquidation``, and an account-key page never saw
    a public liquidation)."""
    from exchange_sim.server.routing import topic_prefix
    from exchange_sim.web.sources import market_topics

    published = [
        topic_prefix(m.Trade(symbol="BTC-PERP", trade_id=1, price=1, qty=1, taker_side=m.Side.BUY)),
        topic_prefix(m.MarkPrice(symbol="BTC-PERP", mark=1, index=1)),
        topic_prefix(m.LiquidationNotice(symbol="BTC-PERP", side=m.Side.SELL, qty=1, price=1)),
    ]
    subscribed = market_topics(["BTC-PERP"])
    assert all(any(p.startswith(s) for s in subscribed) for p in published), (published, subscribed)
    assert b"BTC-PERP.liquidation\x00" in subscribed

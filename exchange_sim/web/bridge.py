"""A page to watch the venue: a small bridge from the venue's sockets to a browser.

::

    venue ROUTER ◄── admin Client (queries: explain, fund, snapshots; firehose of private events)
    venue PUB    ──► BookMirror + SUB (book deltas, trades, marks, liquidation notices)
                          │
                      PageState  (venue events → page messages, books conflated,
                                  liquidation steps grouped per liquidation)
                          │  every 200 ms: changed books, new trades, account
                          ▼
    http://127.0.0.1:PORT/events   Server-Sent Events  ──►  static/index.html + app.js (SVG)

The venue is never touched by the browser: the bridge is just another client
(the standard library's ``http.server`` serves the page and the event stream;
SSE needs nothing more, so no web framework is added). Book updates are
conflated to at most five frames a second per symbol and trades are sent in
batches, so a venue doing tens of thousands of events a second cannot
freeze the page, and a slow page cannot slow the venue (the bridge reads
the PUB socket whatever the browser does).

Replay: pointed at a data dir instead, the same page steps through a journal
(:mod:`exchange_sim.replay`) with play / pause / step / seek; every event of
every account is visible there, as in an admin view.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import deque
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

from protocol import messages as m

log = logging.getLogger("exchange_sim.web")
FLUSH_S = 0.2  # conflation period: at most 5 book frames a second per symbol
BOOK_LEVELS = 40
LIQUIDATION_EVENTS = (
    m.LiquidationStarted, m.LiquidationSlice, m.InsuranceTakeover, m.AutoDeleverage,
    m.CollateralConversion, m.BankruptcyCovered, m.LiquidationFinished, m.CascadeBoundHit,
)


class Hub:
    """Fan-out to every connected page (one queue each; a stuck page is dropped)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._clients: list[queue.Queue] = []

    def connect(self) -> queue.Queue:
        q: queue.Queue = queue.Queue(maxsize=1000)
        with self._lock:
            self._clients.append(q)
        return q

    def disconnect(self, q: queue.Queue) -> None:
        with self._lock:
            if q in self._clients:
                self._clients.remove(q)

    def send(self, name: str, data) -> None:
        frame = f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()
        with self._lock:
            clients = list(self._clients)
        for q in clients:
            try:
                q.put_nowait(frame)
            except queue.Full:  # a page that stopped reading: drop it, never block
                self.disconnect(q)


class PageState:
    """Venue events in, page messages out. Thread-safe; ``flush`` is periodic."""

    def __init__(self, hub: Hub, instruments: m.Instruments, thresholds: dict, fund_id: int):
        self.hub = hub
        self.thresholds = thresholds
        self.fund_id = fund_id
        self.lock = threading.Lock()
        self.tick = {i.symbol: Decimal(i.tick_size) for i in instruments.instruments}
        self.lot = {i.symbol: Decimal(i.lot_size) for i in instruments.instruments}
        self.symbols = [i.symbol for i in instruments.instruments]
        self.books: dict[str, dict] = {s: {"bids": {}, "asks": {}, "seq": 0} for s in self.symbols}
        self.marks: dict[str, tuple[float, float]] = {}
        self.dirty: set[str] = set()
        self.trades: deque = deque(maxlen=200)
        self.new_trades: list = []
        self.cascade: deque = deque(maxlen=500)
        self.n = 0
        self.underlying = {i.symbol: i.underlying for i in instruments.instruments}
        # one liquidation (LiquidationStarted … LiquidationFinished) = one group, shown under a header row
        self.groups: dict[int, dict] = {}
        self.account_group: dict[int, int] = {}
        self.account_msg = None
        self.fund_msg = None

    # ------------------------------------------------------------ units

    def price(self, symbol: str, ticks) -> float:
        return float(Decimal(ticks) * self.tick[symbol]) if ticks is not None else None

    def qty(self, symbol: str, lots: int) -> float:
        return float(lots * self.lot[symbol])

    # ----------------------------------------------------------- events

    def set_book(self, symbol: str, bids, asks, seq: int) -> None:
        with self.lock:
            self.books[symbol] = {"bids": dict(bids), "asks": dict(asks), "seq": seq}
            self.dirty.add(symbol)

    def set_prices(self, info: m.Instruments) -> None:
        """Marks and indexes as of an Instruments answer, so the page has them
        before the first MarkPrice (which the venue sends only on change).
        The mark is the index rounded to the nearest tick, half up (the
        venue's rule, ``Instrument.mark_from_index``)."""
        index = {a.name: a.index_price for a in info.assets if a.index_price}
        with self.lock:
            for s in self.symbols:
                ix = index.get(self.underlying[s])
                if ix is None:
                    continue
                tick_e8 = int(self.tick[s] * m.PRICE_SCALE)
                mark = max(1, (ix + tick_e8 // 2) // tick_e8)
                self.marks[s] = (self.price(s, mark), ix / m.PRICE_SCALE)
                self.dirty.add(s)

    def on_event(self, ev, t: int | None = None) -> None:
        t = t if t is not None else time.time_ns()
        with self.lock:
            kind = type(ev)
            if kind is m.BookDelta:
                b = self.books[ev.symbol]
                for side, changes in (("bids", ev.bids), ("asks", ev.asks)):
                    for p, q in changes:
                        if q:
                            b[side][p] = q
                        else:
                            b[side].pop(p, None)
                b["seq"] = ev.seq
                self.dirty.add(ev.symbol)
            elif kind is m.Trade:
                tr = {"symbol": ev.symbol, "t": t, "side": str(ev.taker_side), "price": self.price(ev.symbol, ev.price),
                      "qty": self.qty(ev.symbol, ev.qty), "liquidation": ev.liquidation, "id": ev.trade_id}
                self.trades.append(tr)
                self.new_trades.append(tr)
            elif kind is m.MarkPrice:
                self.marks[ev.symbol] = (self.price(ev.symbol, ev.mark), ev.index / m.PRICE_SCALE)
                self.dirty.add(ev.symbol)
            elif kind in LIQUIDATION_EVENTS:
                self._liquidation(ev, t)
            elif kind is m.AccountUpdate and ev.account == self.fund_id:
                self.fund_msg = {"balance": ev.balances.get("USDT", 0) / 10**6, "equity": ev.equity}

    def _liquidation(self, ev, t: int) -> None:
        self.n += 1
        sym = getattr(ev, "symbol", None)
        row = {"n": self.n, "t": t, "account": getattr(ev, "account", None), "step": _STEP[type(ev)], "symbol": sym,
               "qty": None, "price": None, "impact": None, "group": None}
        if isinstance(ev, m.LiquidationSlice):
            row.update(qty=self.qty(sym, ev.qty), price=self.price(sym, ev.bankruptcy_price), impact=ev.impact,
                       ratio_after=ev.margin_ratio_after)
        elif isinstance(ev, (m.InsuranceTakeover, m.AutoDeleverage)):
            row.update(qty=self.qty(sym, ev.qty), price=self.price(sym, ev.price))
            if isinstance(ev, m.AutoDeleverage):
                row["step"] = f"ADL vs {ev.counterparty} (rank {ev.rank:.3g})"
        elif isinstance(ev, (m.LiquidationStarted, m.LiquidationFinished)):
            row["ratio_after"] = ev.margin_ratio
        elif isinstance(ev, m.CascadeBoundHit):
            row.update(account=None, step=f"cascade bound hit after {ev.rounds} rounds; waiting: {ev.pending}")
        group = self._group(ev, row)
        self.cascade.append(row)
        if group is not None:  # the header first: the page puts the step under it
            self.hub.send("liqgroup", group)
        self.hub.send("liquidation", row)

    def _group(self, ev, row: dict) -> dict | None:
        """Put a liquidation step in its liquidation's group and update the
        group's summary (the page's header row). Steps of an account that
        come after its liquidation finished (an isolated account's debt
        settlement) join its last group."""
        if isinstance(ev, m.LiquidationStarted):
            gid = self.n
            self.groups[gid] = {"group": gid, "account": ev.account, "symbol": ev.symbol,
                                "ratio_before": ev.margin_ratio, "ratio_after": None, "done": False,
                                "steps": 0, "fund_took": {}, "fund_paid": 0.0, "adl": 0}
            self.account_group[ev.account] = gid
            while len(self.groups) > 300:  # the table keeps 500 rows: older headers are gone anyway
                self.groups.pop(next(iter(self.groups)))
        elif row["account"] is None or (gid := self.account_group.get(row["account"])) not in self.groups:
            return None
        g = self.groups[gid]
        row["group"] = gid
        if isinstance(ev, m.LiquidationFinished):
            g.update(ratio_after=ev.margin_ratio, done=True)
        elif not isinstance(ev, m.LiquidationStarted):
            g["steps"] += 1
            if isinstance(ev, m.LiquidationSlice):
                g["ratio_after"] = ev.margin_ratio_after
            elif isinstance(ev, m.InsuranceTakeover):
                g["fund_took"][ev.symbol] = g["fund_took"].get(ev.symbol, 0.0) + self.qty(ev.symbol, ev.qty)
            elif isinstance(ev, m.BankruptcyCovered):
                g["fund_paid"] += ev.amount / 10**6
            elif isinstance(ev, m.AutoDeleverage):
                g["adl"] += 1
        return dict(g, fund_took=dict(g["fund_took"]))

    def on_explain(self, ex: m.Explain, t: int | None = None) -> None:
        msg = {
            "account": ex.account, "mode": str(ex.mode), "equity": ex.equity, "im": ex.im, "mm": ex.mm,
            "ratio": ex.margin_ratio, "t": t if t is not None else time.time_ns(),
            "assets": [{"asset": a.asset, "value": a.value, "haircut": a.haircut, "counted": a.counted} for a in ex.assets],
            "positions": [{"symbol": p.symbol, "notional": p.notional, "upnl": p.upnl, "cross_mm": p.cross_mm,
                           "impact": p.impact} for p in ex.positions],
            "compare": [{"mode": str(c.mode), "im": c.im, "mm": c.mm, "usable_collateral": c.usable_collateral,
                         "free": c.free} for c in ex.compare],
        }
        with self.lock:
            self.account_msg = msg
        self.hub.send("account", msg)

    def on_account_missing(self, account: int, text: str) -> None:
        """The chosen account cannot be shown (yet): say why on the page."""
        msg = {"account": account, "missing": text}
        with self.lock:
            self.account_msg = msg
        self.hub.send("account", msg)

    # ------------------------------------------------------------ output

    def book_msg(self, symbol: str) -> dict:
        b = self.books[symbol]
        bids = sorted(b["bids"].items(), reverse=True)[:BOOK_LEVELS]
        asks = sorted(b["asks"].items())[:BOOK_LEVELS]
        mark, index = self.marks.get(symbol, (None, None))
        return {
            "symbol": symbol, "seq": b["seq"], "mark": mark, "index": index,
            "bids": [[self.price(symbol, p), self.qty(symbol, q)] for p, q in bids],
            "asks": [[self.price(symbol, p), self.qty(symbol, q)] for p, q in asks],
            "best_bid": self.price(symbol, bids[0][0]) if bids else None,
            "best_ask": self.price(symbol, asks[0][0]) if asks else None,
        }

    def flush(self) -> None:
        """Send what changed since the last flush (the conflation point)."""
        with self.lock:
            dirty, self.dirty = self.dirty, set()
            trades, self.new_trades = self.new_trades, []
            books = [self.book_msg(s) for s in sorted(dirty)]
            fund = self.fund_msg
        for b in books:
            self.hub.send("book", b)
        for tr in trades[-100:]:
            self.hub.send("trade", tr)
        if fund is not None:
            self.hub.send("fund", fund)

    def replay_all(self, q: queue.Queue, hello: dict) -> None:
        """Bring a newly connected page up to date."""
        def put(name, data):
            q.put_nowait(f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode())
        with self.lock:
            put("hello", hello)
            for s in self.symbols:
                put("book", self.book_msg(s))
            for tr in self.trades:
                put("trade", tr)
            headed = set()
            for row in self.cascade:
                gid = row["group"]
                if gid is not None and gid not in headed and gid in self.groups:
                    headed.add(gid)
                    put("liqgroup", self.groups[gid])
                put("liquidation", row)
            if self.account_msg:
                put("account", self.account_msg)
            if self.fund_msg:
                put("fund", self.fund_msg)

    def clear_books(self) -> None:
        with self.lock:
            for b in self.books.values():
                b["bids"].clear(), b["asks"].clear()
            self.dirty = set(self.symbols)

    def reset(self) -> None:
        with self.lock:
            for b in self.books.values():
                b["bids"].clear(), b["asks"].clear()
            self.trades.clear()
            self.new_trades.clear()
            self.cascade.clear()
            self.groups.clear()
            self.account_group.clear()
            self.n = 0
            self.account_msg = None
            self.dirty = set(self.symbols)
        self.hub.send("reset", {})


_STEP = {
    m.LiquidationStarted: "started", m.LiquidationSlice: "slice", m.InsuranceTakeover: "insurance takeover",
    m.AutoDeleverage: "ADL", m.CollateralConversion: "collateral conversion", m.BankruptcyCovered: "bankruptcy covered",
    m.LiquidationFinished: "finished", m.CascadeBoundHit: "cascade bound",
}


# ------------------------------------------------------------------ HTTP


def _static(name: str) -> bytes:
    return resources.files("exchange_sim.web").joinpath("static", name).read_bytes()


_TYPES = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript", "style.css": "text/css"}


class WebApp:
    """HTTP + SSE front of a source (``LiveSource`` or ``ReplaySource``)."""

    def __init__(self, source, host: str = "127.0.0.1", port: int = 8080):
        self.source = source
        app = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, fmt, *args):  # quiet by default
                log.debug("http: " + fmt, *args)

            def do_GET(self):
                path = self.path.split("?")[0].lstrip("/") or "index.html"
                if path == "events":
                    return app._events(self)
                if path in _TYPES:
                    body = _static(path)
                    self.send_response(200)
                    self.send_header("Content-Type", _TYPES[path])
                    self.send_header("Content-Length", str(len(body)))
                    self.send_header("Cache-Control", "no-store")
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.send_error(404)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length > 10_000:
                    return self.send_error(413)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                    if not isinstance(body, dict):
                        raise ValueError("body must be a JSON object")
                    if self.path == "/api/account":
                        app.source.choose_account(int(body["account"]))
                    elif self.path == "/api/replay":
                        app.source.control(str(body.get("action")), body.get("position"))
                    else:
                        return self.send_error(404)
                except (ValueError, KeyError, TypeError, PermissionError) as exc:
                    payload = json.dumps({"error": str(exc)}).encode()
                    self.send_response(400)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                self.send_response(204)
                self.end_headers()

        try:
            self.httpd = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:  # e.g. the port is taken: say which address, in words
            reason = (exc.strerror or str(exc)).lower()
            err = OSError(f"cannot listen on {host}:{port}: {reason}")
            err.errno = exc.errno
            raise err from None
        self.httpd.daemon_threads = True
        self.url = f"http://{host}:{self.httpd.server_address[1]}/"

    def _events(self, handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-store")
        handler.end_headers()
        q = self.source.hub.connect()
        try:
            self.source.greet(q)
            while True:
                try:
                    frame = q.get(timeout=10.0)
                except queue.Empty:
                    frame = b": keep-alive\n\n"
                handler.wfile.write(frame)
                handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
        finally:
            self.source.hub.disconnect(q)

    def serve_forever(self) -> None:
        self.source.start()
        try:
            self.httpd.serve_forever(poll_interval=0.2)
        finally:
            self.source.stop()
            self.httpd.server_close()

    def shutdown(self) -> None:
        self.httpd.shutdown()


__all__ = ["Hub", "PageState", "WebApp"]

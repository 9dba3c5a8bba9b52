"""Where the page's data comes from: a live venue, or a journal replayed offline.

Both feed a :class:`~exchange_sim.web.bridge.PageState` and expose the same
small interface to the web app: ``hub``, ``greet(queue)``, ``start()``,
``stop()``, ``choose_account(n)`` and ``control(action, position)``.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import msgspec
import zmq

from exchange_sim import journal, replay
from exchange_sim.config import Config
from exchange_sim.venue import Venue
from exchange_sim.web.bridge import BOOK_LEVELS, FLUSH_S, Hub, PageState
from protocol import messages as m
from exchange_sim.server.routing import CHANNELS
from protocol.session import TOPIC_SEP, LoggedOut, decode_market, topic

#: what the live page reads off the PUB socket besides the books (the mirror's)
_PAGE_EVENTS = (m.Trade, m.MarkPrice, m.LiquidationNotice)


def market_topics(symbols) -> list[bytes]:
    """The PUB prefixes the page subscribes to: the server's own channel names
    (``CHANNELS``), so a renamed channel cannot silently starve the page."""
    return [topic(s, CHANNELS[cls]) + TOPIC_SEP for s in symbols for cls in _PAGE_EVENTS]

log = logging.getLogger("exchange_sim.web")
ACCOUNT_EVERY_S = 0.5  # how often the chosen account's explain is refreshed (live)


def _thresholds(cfg: Config) -> dict:
    r = cfg.risk
    return {"warning": r.warning_ratio, "reduce_only": r.reduce_only_ratio, "liquidation": r.liquidation_ratio}


class _Source:
    def __init__(self, cfg: Config, account: int, can_choose: bool, mode: str, label: str):
        self.cfg = cfg
        self.hub = Hub()
        self.account = account
        self.can_choose = can_choose
        self.mode = mode
        self.label = label
        self.state: PageState | None = None
        self._running = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = False
        self.message = "connecting to the venue…"

    def hello(self) -> dict:
        return {
            "symbols": [i.symbol for i in self.cfg.instruments], "thresholds": _thresholds(self.cfg),
            "mode": self.mode, "source": self.label, "account": self.account, "can_choose_account": self.can_choose,
        }

    def greet(self, q) -> None:
        if self.state is not None:
            self.state.replay_all(q, self.hello())
        else:
            q.put_nowait(f"event: hello\ndata: {msgspec.json.encode(self.hello()).decode()}\n\n".encode())
        q.put_nowait(f"event: status\ndata: {msgspec.json.encode(self.status()).decode()}\n\n".encode())

    def status(self) -> dict:
        state = "connected" if self.connected else ("connecting" if self.message.startswith("connecting")
                                                    else "unreachable")
        return {"connected": self.connected, "state": state, "message": self.message}

    def set_status(self, connected: bool, message: str = "") -> None:
        if (connected, message) != (self.connected, self.message):
            self.connected, self.message = connected, message
            self.hub.send("status", self.status())

    def choose_account(self, account: int) -> None:
        if not self.can_choose:
            raise PermissionError("this page was opened with one account's key: only that account can be shown")
        if account < 0:
            raise ValueError("account must be >= 0")
        self.account = account
        self._account_changed()

    def _account_changed(self) -> None:
        pass

    def control(self, action: str, position) -> None:
        raise ValueError("replay controls need a page opened on a data dir")

    def start(self) -> None:
        self._running.set()
        self._thread = threading.Thread(target=self._run, name=f"web-{self.mode}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._running.clear()
        if self._thread is not None:
            self._thread.join(timeout=5)


class LiveSource(_Source):
    """Watches a running venue over its sockets, like any client.

    With the admin key the page may show any account and gets every
    account's liquidation steps (the server's admin firehose); with one
    account's key it shows that account only, and public liquidation notices.
    """

    def __init__(self, cfg: Config, orders: str, market_data: str, account: int, api_key: str,
                 server_key: str | None = None, admin: bool = True):
        super().__init__(cfg, account, admin, "live", orders)
        self.orders, self.market_data = orders, market_data
        self.api_key, self.server_key, self.admin = api_key, server_key, admin
        self._refresh = threading.Event()
        self.attempts = 0  # sessions tried (connects and reconnects)
        self._logged: str | None = None  # the last "unreachable" line logged: log again only on change

    def _account_changed(self) -> None:
        self._refresh.set()

    def _run(self) -> None:
        while self._running.is_set():
            self.attempts += 1
            try:
                self._session()
            except Exception as exc:  # any failure: show it, wait, reconnect
                text = f"venue unreachable at {self.orders} ({type(exc).__name__}: {exc}); retrying"
                if text != self._logged:
                    log.warning("%s", text)
                    self._logged = text
                self.set_status(False, text)
            for _ in range(10):
                if not self._running.is_set():
                    return
                time.sleep(0.1)

    def _session(self) -> None:
        from clients import BookMirror, Client

        ctx = zmq.Context.instance()
        client = Client(self.orders, account=self.account if not self.admin else 0, api_key=self.api_key,
                        server_key=self.server_key, timeout=2.0, firehose=self.admin)
        mirror = sub = None
        try:
            (info,) = [e for e in client.call(m.QueryInstruments()) if isinstance(e, m.Instruments)]
            if self.state is None:
                self.state = PageState(self.hub, info, _thresholds(self.cfg), self.cfg.liquidation.insurance_account)
            else:  # a reconnect: the books are re-synced from snapshots; history stays
                self.state.clear_books()
            self.state.set_prices(info)  # marks and indexes now, not at the next price change
            symbols = self.state.symbols
            mirror = BookMirror(symbols, market_data=self.market_data, orders=self.orders,
                                server_key=self.server_key, context=ctx, timeout=2.0)
            sub = ctx.socket(zmq.SUB)
            sub.linger = 0
            if self.server_key is not None:
                from clients._core import curve

                curve(sub, self.server_key)
            for prefix in market_topics(symbols):
                sub.setsockopt(zmq.SUBSCRIBE, prefix)
            sub.connect(self.market_data)
            self.set_status(True, "")
            if self._logged is not None:
                log.warning("venue reachable again at %s", self.orders)
                self._logged = None
            seqs = dict.fromkeys(symbols, -1)
            next_flush = next_account = 0.0
            while self._running.is_set():
                mirror.poll(0.02)
                while True:
                    try:
                        frame = sub.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    ev = decode_market(frame)
                    if not isinstance(ev, m.LiquidationNotice) or not self.admin:
                        self.state.on_event(ev)
                while (ev := client.poll_event(0.0, raw=True)) is not None:
                    if isinstance(ev, LoggedOut):
                        raise ConnectionError(f"logged out: {ev.reason}")
                    self.state.on_event(ev)
                now = time.monotonic()
                if now >= next_account or self._refresh.is_set():
                    self._refresh.clear()
                    next_account = now + ACCOUNT_EVERY_S
                    self._query_account(client)
                if now >= next_flush:
                    next_flush = now + FLUSH_S
                    for s in symbols:
                        if mirror.synced(s) and mirror.seq(s) != seqs[s]:
                            seqs[s] = mirror.seq(s)
                            bids, asks = mirror.levels(s, BOOK_LEVELS)
                            self.state.set_book(s, bids, asks, seqs[s])
                    self.state.flush()
        finally:
            for closer in (lambda: client.close(logout=True), lambda: mirror and mirror.close(),
                           lambda: sub and sub.close()):
                try:
                    closer()
                except Exception:  # closing a dead connection: nothing to do
                    pass

    def _query_account(self, client) -> None:
        """The chosen account's explain (and the fund's balance). A reject is
        shown on the page, never a reason to drop the session: an account
        that is not open yet is picked up by a later query once it opens."""
        account = self.account
        for ev in client.request(m.QueryExplain(account=account)).events:
            if isinstance(ev, m.Explain):
                self.state.on_explain(ev)
            elif isinstance(ev, m.Rejected):
                self.state.on_account_missing(account, _missing_text(account, ev))
        if self.admin:
            for ev in client.request(m.QueryAccount(account=self.cfg.liquidation.insurance_account)).events:
                if isinstance(ev, m.AccountUpdate):
                    self.state.on_event(ev)


def _missing_text(account: int, rej: m.Rejected) -> str:
    if rej.reason == m.RejectReason.UNKNOWN_ACCOUNT:
        return f"account {account} is not open yet"
    return f"account {account}: {rej.message}"


class ReplaySource(_Source):
    """Steps through a data dir's journal (from the start) in-process."""

    def __init__(self, data_dir: str | Path, account: int = 1, speed: float = 20.0):
        self.dir = Path(data_dir)
        cfg = replay.data_config(self.dir)
        super().__init__(cfg, account, True, "replay", str(self.dir))
        self.records, notes = journal.read(self.dir, after_seq=0, repair=False)
        if notes:
            log.warning("replay: %s", "; ".join(notes))
        if not self.records:
            raise ValueError(f"{self.dir} holds no journal records")
        if self.records[0].seq != 1:
            raise ValueError(f"{self.dir}: the journal starts at seq {self.records[0].seq}; replay needs it from 1 "
                             "(was it pruned?)")
        self.speed = speed
        self.playing = False
        self.position = 0
        self.lock = threading.RLock()
        self.venue = Venue(cfg)
        self.info = self.venue.query(m.QueryInstruments())[0]  # an unsequenced read
        self.state = PageState(self.hub, self.info, _thresholds(cfg), cfg.liquidation.insurance_account)
        self.state.set_prices(self.info)  # the prices before the first journal record
        self._explain(0)
        self.connected, self.message = True, ""

    def _progress(self) -> None:
        self.hub.send("replay", {"position": self.position, "total": len(self.records), "playing": self.playing})

    def greet(self, q) -> None:
        super().greet(q)
        msg = {"position": self.position, "total": len(self.records), "playing": self.playing}
        q.put_nowait(f"event: replay\ndata: {msgspec.json.encode(msg).decode()}\n\n".encode())

    def _explain(self, t: int) -> None:
        acct = self.venue.accounts.get(self.account)
        if acct is not None:
            self.state.on_explain(self.venue.explain(self.account), t=t)
        else:
            self.state.on_account_missing(self.account, f"account {self.account} is not open yet")
        fund = self.venue.accounts.get(self.cfg.liquidation.insurance_account)
        if fund is not None:
            self.state.on_event(self.venue.account_update(fund.id))

    def step(self, quiet: bool = False) -> bool:
        with self.lock:
            if self.position >= len(self.records):
                self.playing = False
                return False
            rec = self.records[self.position]
            for ev in self.venue.apply(rec.command, rec.ts):
                self.state.on_event(ev, t=rec.ts)
            self.position += 1
            if not quiet:
                self._explain(rec.ts)
                self.state.flush()
                self._progress()
            return True

    def seek(self, position: int) -> None:
        position = max(0, min(int(position), len(self.records)))
        with self.lock:
            if position < self.position:
                self.venue = Venue(self.cfg)
                self.position = 0
                self.state.reset()
                self.state.set_prices(self.info)  # a new venue: back to the starting prices
            # keep ~200 points of the ratio timeline while fast-forwarding
            every = max(1, (position - self.position) // 200)
            while self.position < position:
                self.step(quiet=True)
                if self.position % every == 0:
                    self._explain(self.records[self.position - 1].ts)
            t = self.records[self.position - 1].ts if self.position else 0
            self._explain(t)
            self.state.flush()
            self._progress()

    def _account_changed(self) -> None:
        with self.lock:
            self._explain(self.records[self.position - 1].ts if self.position else 0)

    def control(self, action: str, position) -> None:
        if action == "play":
            self.playing = True
        elif action == "pause":
            self.playing = False
        elif action == "step":
            self.playing = False
            self.step()
        elif action == "seek":
            if position is None:
                raise ValueError("seek needs a position")
            self.playing = False
            self.seek(int(position))
        else:
            raise ValueError(f"unknown replay action {action!r}: play, pause, step or seek")
        self._progress()

    def _run(self) -> None:
        while self._running.is_set():
            if self.playing:
                self.step()
                time.sleep(1.0 / self.speed)
            else:
                time.sleep(0.05)

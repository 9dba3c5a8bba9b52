"""``exchange-sim demo``: the source article's story, told by a running venue.

One command starts the venue on loopback (a real ZeroMQ server in this
process), lets house liquidity (:mod:`exchange_sim.liquidity`: a market
maker, an arbitrageur and a noise flow, accounts of the venue) trade BTC-PERP
for a few seconds so there is a live market to look at, then walks through the story
of cross-collateralization under portfolio margin, printing what the venue
says at each step:

1. an account holding only BTC and ETH opens a SOL-PERP long and a BNB-PERP short;
2. the explain view: haircuts, requirement, margin ratio;
3. the same holdings under isolated, cross and portfolio margin, and the idle capital of each;
4. a hedge (a BTC-PERP short against an ETH-PERP long) lowers the requirement;
5. $10,000 pooled behind five leveraged trades: one shock, a cascade of liquidations, in order;
6. the same positions backed by USDT survive the shock that liquidates them when backed by MEME.

The story talks to the venue over the wire through one admin session (which
may act on any account), and its counterparty is a "house" account quoting
exact prices, so every narrated figure is deterministic: `tests/test_demo.py`
checks them against the venue's own state. Every margin call and liquidation
the venue reports is narrated as it happens (:mod:`exchange_sim.narration`).
Watch it live in a browser with ``exchange-sim web`` (the demo prints the
line); with ``--data-dir DIR`` the venue journals the whole run, so
``exchange-sim replay DIR`` and ``exchange-sim web --data-dir DIR`` replay it
step by step afterwards.
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import TextIO

from clients import Client
from exchange_sim import config as config_mod
from exchange_sim.narration import LIQUIDATION_EVENTS, Narrator
from exchange_sim.risk.explain import render
from exchange_sim.server.loop import Server
from protocol import messages as m
from protocol.units import ratio_text

HOUSE = 100  # quotes every book at exact prices: the story's counterparty
STORY = 101  # the article's BTC + ETH account
HEDGER = 102
POOLED = 103  # $10,000 behind five trades
BUFFER_USDT, BUFFER_MEME = 104, 105
PRICES = {"BTC": "50000", "ETH": "2500", "SOL": "200", "BNB": "500", "MEME": "0.25"}


class Story:
    """The narrated part: one admin client, exact prices, every figure from the venue."""

    def __init__(self, client: Client, out: TextIO, pause: float, data_dir: Path | None = None):
        self.c = client
        self.out = out
        self.pause = pause
        self.data_dir = data_dir
        self.figures: dict = {"liquidations": []}  # every margin / liquidation event, in venue order
        self.narrator: Narrator | None = None

    # ------------------------------------------------------------ helpers

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def chapter(self, title: str) -> None:
        time.sleep(self.pause)
        self.say()
        self.say(f"== {title} " + "=" * max(0, 70 - len(title)))

    def send(self, cmd) -> list:
        events = self.c.request(cmd).events
        rej = [e for e in events if isinstance(e, m.Rejected)]
        if rej:
            raise RuntimeError(f"the venue refused {type(cmd).__name__}: {rej[0].reason}: {rej[0].message}")
        if self.narrator is not None:  # whatever a command set off is told right under it
            self.figures["liquidations"] += [e for e in events if isinstance(e, LIQUIDATION_EVENTS)]
            for line in self.narrator.lines(events):
                self.say(line)
        return events

    def _ins(self, symbol: str) -> m.InstrumentInfo:
        return next(i for i in self.info.instruments if i.symbol == symbol)

    def ticks(self, symbol: str, price) -> int:
        return int(Decimal(price) / Decimal(self._ins(symbol).tick_size))

    def lots(self, symbol: str, qty) -> int:
        return int(Decimal(qty) / Decimal(self._ins(symbol).lot_size))

    def deposit(self, account: int, asset: str, amount: str) -> None:
        unit = 10 ** next(a.decimals for a in self.info.assets if a.name == asset)
        self.send(m.Deposit(account=account, asset=asset, amount=int(Decimal(amount) * unit)))

    def trade(self, account: int, symbol: str, qty: str, price: str) -> None:
        """``account`` takes ``qty`` (signed) from the house at exactly ``price``."""
        lots = self.lots(symbol, qty.lstrip("-"))
        buy = not qty.startswith("-")
        p = self.ticks(symbol, price)
        self.send(m.NewOrder(account=HOUSE, symbol=symbol, side=m.Side.SELL if buy else m.Side.BUY, qty=lots, price=p,
                             tif=m.TimeInForce.POST_ONLY))
        ev = self.send(m.NewOrder(account=account, symbol=symbol, side=m.Side.BUY if buy else m.Side.SELL, qty=lots,
                                  price=p, tif=m.TimeInForce.FOK))
        assert any(isinstance(e, m.Fill) and e.account == account for e in ev)

    def explain(self, account: int) -> m.Explain:
        (ex,) = [e for e in self.send(m.QueryExplain(account=account)) if isinstance(e, m.Explain)]
        return ex

    def set_prices(self, prices: dict[str, str]) -> list:
        events = []
        for asset, price in prices.items():
            events += self.send(m.SetIndexPrice(asset=asset, price=int(Decimal(price) * m.PRICE_SCALE)))
        return events

    def house_bids(self, symbol: str, top: str, step_pct: str, levels: int, usd_each: int) -> None:
        """House bids below ``top``, ``step_pct`` apart: the liquidity liquidations sell into."""
        ins = self._ins(symbol)
        price = Decimal(top)
        for _ in range(levels):
            qty = max(Decimal(ins.lot_size), (Decimal(usd_each) / price).quantize(Decimal(ins.lot_size)))
            self.send(m.NewOrder(account=HOUSE, symbol=symbol, side=m.Side.BUY, qty=self.lots(symbol, qty),
                                 price=self.ticks(symbol, price.quantize(Decimal(ins.tick_size)))))
            price = price * (1 - Decimal(step_pct) / 100)

    # --------------------------------------------------------------- story

    def run(self) -> dict:
        (self.info,) = [e for e in self.send(m.QueryInstruments()) if isinstance(e, m.Instruments)]
        self.narrator = Narrator(self.info)
        self.set_prices(PRICES)
        self.deposit(HOUSE, "USDT", "100000000")

        self.chapter("1. A wallet of BTC and ETH backs a SOL long and a BNB short")
        self.deposit(STORY, "BTC", "0.2")   # $10,000
        self.deposit(STORY, "ETH", "2")     # $5,000
        self.say(f"account {STORY} deposits 0.2 BTC ($10,000) and 2 ETH ($5,000): no stablecoin at all")
        self.trade(STORY, "SOL-PERP", "250", "200")   # $50,000 long
        self.trade(STORY, "BNB-PERP", "-50", "500")   # $25,000 short
        self.say("it buys 250 SOL-PERP at $200 ($50,000) and sells 50 BNB-PERP at $500 ($25,000);")
        self.say("the venue accepted both: its BTC and ETH back them (cross-collateralization);")
        self.say("the taker fees were charged in USDT it never had: a small debt its BTC and ETH cover too")

        self.chapter("2. The explain view")
        ex = self.explain(STORY)
        self.say(render(ex))
        self.figures["story"] = ex

        self.chapter("3. Isolated vs cross vs portfolio: the idle capital of each")
        for row in ex.compare:
            ratio = ratio_text(row.margin_ratio)
            self.say(f"  {row.mode.value:<10} needs IM ${row.im:>9,.2f} (MM ${row.mm:>8,.2f}); usable collateral "
                     f"${row.usable_collateral:>10,.2f}; free ${row.free:>10,.2f}; ratio {ratio}")
        self.say("  isolated margin is funded in USDT only, so this wallet backs nothing there;")
        self.say("  portfolio margin nets the SOL long against the BNB short and asks for the least.")
        self.trade(STORY, "SOL-PERP", "-250", "200")  # the story account closes both trades
        self.trade(STORY, "BNB-PERP", "50", "500")

        self.chapter("4. A hedge lowers the requirement (the article's Step 3)")
        self.deposit(HEDGER, "USDT", "20000")
        self.send(m.SetMarginMode(account=HEDGER, mode=m.MarginMode.PORTFOLIO))
        self.trade(HEDGER, "ETH-PERP", "40", "2500")  # $100,000 long
        alone = self.explain(HEDGER)
        self.trade(HEDGER, "BTC-PERP", "-1.2", "50000")  # $60,000 short
        hedged = self.explain(HEDGER)
        cross_both = next(r for r in hedged.compare if r.mode == m.MarginMode.CROSS)
        self.say(f"account {HEDGER} (portfolio margin): ETH-PERP long $100,000 alone needs MM ${alone.mm:,.2f}")
        self.say(f"add a BTC-PERP short of $60,000: MM ${hedged.mm:,.2f} (cross would ask ${cross_both.mm:,.2f})")
        worst = next(s for s in hedged.scenarios if s.worst)
        self.say(f"worst scenario now: {worst.name} with a loss of ${worst.loss:,.2f}")
        self.figures["hedge"] = (alone.mm, hedged.mm, cross_both.mm)

        self.chapter("5. $10,000 pooled behind five leveraged trades; a SOL crash")
        self.deposit(POOLED, "USDT", "10000")
        book = {"BTC-PERP": ("0.8", "50000"), "ETH-PERP": ("12", "2500"), "SOL-PERP": ("125", "200"),
                "BNB-PERP": ("30", "500"), "MEME-PERP": ("20000", "0.25")}
        for sym, (qty, price) in book.items():
            self.trade(POOLED, sym, qty, price)
            self.house_bids(sym, str(Decimal(price) * Decimal("0.999")), "0.1", 30, 4_000)
        before = self.explain(POOLED)
        self.say(f"account {POOLED}: $10,000 of USDT behind $115,000 of longs in five perpetuals "
                 f"(margin ratio {ratio_text(before.margin_ratio)})")
        self.say("SOL falls 11% four times (-37% in all); each time the house has already moved its")
        self.say("SOL bids below the new price, as a market does before the index catches up.")
        self.say("The venue closes the positions in slices, the one whose closing frees the most")
        self.say("maintenance margin first, never below its bankruptcy price (the bound):")
        events = []
        price = Decimal("200")
        for i in range(4):
            price = price * Decimal("0.89")
            self.send(m.CancelAll(account=HOUSE, symbol="SOL-PERP"))
            self.house_bids("SOL-PERP", str(price * Decimal("0.999")), "0.1", 30, 4_000)
            self.say(f"  SOL -11% (shock {i + 1} of 4): index ${price:,.2f}")
            events += self.send(m.ShockPrice(asset="SOL", change_bps=-1100))
        cascade = [e.symbol for e in events if isinstance(e, m.LiquidationSlice) and e.account == POOLED]
        closed = sorted(set(cascade))
        self.say(f"a crash in one trade (SOL) closed positions in {len(closed)} books: {', '.join(closed)}")
        self.figures["cascade"] = cascade

        self.chapter("6. A stablecoin buffer")
        for acct, asset, amount in ((BUFFER_USDT, "USDT", "5000"), (BUFFER_MEME, "MEME", "20000")):
            self.deposit(acct, asset, amount)  # both $5,000 at index
            self.trade(acct, "BNB-PERP", "100", "500")  # $50,000 long: 10x
        self.house_bids("BNB-PERP", "449", "0.1", 30, 4_000)
        for acct in (BUFFER_USDT, BUFFER_MEME):
            ex = self.explain(acct)
            main = max(ex.assets, key=lambda a: a.value)
            self.say(f"account {acct}: ${main.value:,.0f} of {main.asset} counted as ${main.counted:,.2f}, "
                     f"long $50,000 BNB-PERP, ratio {ratio_text(ex.margin_ratio)}")
        self.say(f"(account {POOLED} still holds what its liquidation left of its five longs: the same")
        self.say(" moves reach it too, and the book's bids run out, so the insurance fund takes over)")
        self.say("BNB falls 5%:")
        events = self.send(m.ShockPrice(asset="BNB", change_bps=-500))
        self.say("MEME, a risk-on coin, falls 40% with it:")
        events += self.send(m.ShockPrice(asset="MEME", change_bps=-4000))
        liquidated = sorted({e.account for e in events if isinstance(e, m.LiquidationStarted)})
        self.say("after both moves:")
        for acct in (BUFFER_USDT, BUFFER_MEME):
            ex = self.explain(acct)
            fate = "LIQUIDATED" if acct in liquidated else "survives"
            now = "no positions left" if ex.margin_ratio is None else f"ratio now {ratio_text(ex.margin_ratio)}"
            self.say(f"  account {acct} ({'USDT' if acct == BUFFER_USDT else 'MEME'} collateral): {fate}; {now}")
        self.figures["buffer_liquidated"] = liquidated
        self.chapter("The end")
        if self.data_dir is not None:
            self.say(f"every figure above came from the venue over the wire, and {self.data_dir} journals it all;")
            self.say("replay it step by step:")
            self.say(f"  exchange-sim replay {self.data_dir} --print     # every command and what it set off")
            self.say(f"  exchange-sim web --data-dir {self.data_dir}     # the page, replaying beside this story")
        else:
            self.say("every figure above came from the venue over the wire; to replay it, run it with a data dir:")
            self.say("  exchange-sim demo --data-dir run1   # then: exchange-sim replay run1 --print")
            self.say("                                      # or:   exchange-sim web --data-dir run1")
        return self.figures


def house_liquidity(cfg, venue):
    """The house agents the warm-up runs (:mod:`exchange_sim.liquidity`): the
    config's profile on BTC-PERP, with a brisker noise flow, so there is a
    live market to watch before the story."""
    import msgspec

    from exchange_sim.liquidity import House

    lp = cfg.liquidity
    profile = msgspec.structs.replace(lp, symbols=["BTC-PERP"],
                                      noise=msgspec.structs.replace(lp.noise, rate_per_s=20.0))
    return House(profile, venue)


def warm_up(server: Server, orders: str, seconds: float, out: TextIO) -> None:
    """House liquidity (a market maker, an arbitrageur and a noise flow, venue
    accounts 900-902) trades BTC-PERP for ``seconds``; then it stops and its
    quotes are cancelled, so the story's counterparty is its own house
    account quoting exact prices and every narrated figure stays exact."""
    house = server.house
    print(f"warm-up: house liquidity (maker {house.p.maker_account}, arbitrageur {house.p.arb_account}, noise "
          f"{house.p.noise_account}) trades BTC-PERP for {seconds:g}s ...", file=out, flush=True)
    try:
        time.sleep(seconds)
    finally:
        server.house = None  # the loop reads it each turn: no more house commands after this one
    admin = Client(orders, 0, server.config.server.admin_key, timeout=10.0)
    try:
        for acct in house.accounts:
            admin.call(m.CancelAll(account=acct))
        pos = admin.account(house.p.maker_account).positions
        held = next((p.qty for p in pos if p.symbol == "BTC-PERP"), Decimal(0))
    finally:
        admin.close()
    print(f"  {house_line(house, held)}", file=out, flush=True)


def house_line(house, maker_position: Decimal) -> str:
    """The house's tally as a sentence."""
    return (f"house liquidity: {house.commands} orders and cancels, {house.trades} trades; the maker is now "
            f"{_position(maker_position)}; its quotes are cancelled for the story")


def _position(qty: Decimal, symbol: str = "BTC-PERP") -> str:
    return f"flat in {symbol}" if not qty else f"{'long' if qty > 0 else 'short'} {abs(qty)} {symbol}"


def _bind(cfg, default_ports: bool, venue=None) -> tuple[Server, str, str]:
    """The config's endpoints when they are free (so a plain ``exchange-sim
    web`` finds the demo), else any free loopback ports."""
    import zmq

    if default_ports:
        server = Server(cfg, venue=venue)
        try:
            return server, *server.bind()
        except zmq.ZMQError:
            server.close()
    server = Server(cfg, orders_endpoint="tcp://127.0.0.1:*", market_data_endpoint="tcp://127.0.0.1:*", venue=venue)
    return server, *server.bind()


def _open_data_dir(directory: Path, cfg, out: TextIO):
    """A journal in ``directory``, as ``serve --data-dir`` keeps one; the
    story's figures assume a fresh venue, so a dir holding a run is refused."""
    from exchange_sim import journal
    from exchange_sim.server import open_data_dir

    if directory.exists() and (not directory.is_dir() or journal.segments(directory) or journal.snapshots(directory)):
        raise ValueError(f"{directory} already holds a run (or is not a directory): the demo tells its story on a "
                         "fresh venue; give it a new or empty data dir")
    return open_data_dir(directory, cfg, config_mod.default_text(), out)


def run(fast: bool = False, out: TextIO | None = None, web_hint: bool = True, stay: bool = False,
        default_ports: bool = True, data_dir: str | Path | None = None) -> dict | None:
    """Start the venue, warm it up, tell the story, stop (or, with ``stay``,
    keep serving until Ctrl-C). Returns the figures, or None when Ctrl-C
    cut the story short (the venue is stopped cleanly all the same).

    With ``data_dir`` the venue journals every command there, as
    ``exchange-sim serve --data-dir`` does, and snapshots it at the end."""
    import signal
    import sys

    out = out or sys.stdout
    cfg = config_mod.default()
    journal = venue = None
    if data_dir is not None:
        data_dir = Path(data_dir)
        cfg, venue, journal, _ = _open_data_dir(data_dir, cfg, out)
    server, orders, market_data = _bind(cfg, default_ports, venue)
    if journal is not None:
        server.journal, server.data_dir, server.snapshot_every = journal, data_dir, cfg.journal.snapshot_every
    server.house = house_liquidity(cfg, server.venue)  # its accounts open with the others
    server.start_up()
    thread = threading.Thread(target=server.serve_forever, name="venue", daemon=True)
    thread.start()
    if data_dir is not None:
        print(f"exchange-sim demo: journaling the run in {data_dir}", file=out)
    print(f"exchange-sim demo: the venue listens on {orders} (orders) and {market_data} (market data)", file=out)
    if web_hint:
        plain = (orders, market_data) == (cfg.server.orders_endpoint, cfg.server.market_data_endpoint)
        how = "exchange-sim web" if plain else f"exchange-sim web --orders {orders} --market-data {market_data}"
        print(f"watch it in a browser: run `{how}` in another terminal, open http://127.0.0.1:8080,", file=out)
        print(f"and pick account {STORY} (the article's wallet) or {POOLED} (the cascade)", file=out)
    out.flush()
    figures = None
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if main_thread else None
    try:
        warm_up(server, orders, 1.0 if fast else 4.0, out)
        admin = Client(orders, 0, cfg.server.admin_key, timeout=10.0)
        try:
            figures = Story(admin, out, 0.0 if fast else 1.5, data_dir).run()
        finally:
            admin.close()
        if stay:
            print("the venue stays up for you to explore; Ctrl-C to stop", file=out, flush=True)
            done = threading.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: done.set())
            while not done.wait(0.5):
                pass
    except KeyboardInterrupt:  # Ctrl-C: stop as serve does, one line, no traceback
        if main_thread:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean stop short
        kept = f"; {data_dir} keeps the journal so far" if data_dir is not None else ""
        print(f"\ninterrupted (Ctrl-C): stopping the venue{kept}", file=out, flush=True)
    finally:
        server.stop()
        thread.join(10)
        server.close()
        if journal is not None:
            journal.close()
        if main_thread:
            signal.signal(signal.SIGINT, previous)
    return figures

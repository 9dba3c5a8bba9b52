"""The core as a pipeline (docs/adr/0007-pipeline.md): reads leave the
sequence, the server answers them without journaling them, and the stages
reach into no other module's private members."""

from __future__ import annotations

import ast
import threading
from pathlib import Path

from venue_helpers import BTC, BTC_MARK, fund, rest, trade

from exchange_sim import config, journal, snapshot
from exchange_sim.core import sequencer
from exchange_sim.venue import Venue
from protocol.messages import (
    NewOrder,
    QueryAccount,
    QueryBook,
    QueryExplain,
    QueryInstruments,
    QueryOpenOrders,
    Rejected,
    RejectReason,
    Side,
)

QUERIES = (
    QueryAccount(account=1), QueryOpenOrders(account=1), QueryOpenOrders(account=2, symbol=BTC),
    QueryBook(symbol=BTC, depth=3), QueryInstruments(), QueryExplain(account=2),
)


def _busy_venue() -> Venue:
    v = Venue()
    fund(v, 1, USDT=100_000)
    fund(v, 2, USDT=100_000, BTC=1)
    trade(v, 1, 2, 50, BTC_MARK)
    rest(v, 1, "buy", 10, BTC_MARK - 10)
    return v


def test_query_answers_as_apply_does_without_a_sequence_number():
    v = _busy_venue()
    for q in QUERIES:
        seq, digest = v.seq, snapshot.state_hash(v)
        answer = v.query(q)
        assert (v.seq, snapshot.state_hash(v)) == (seq, digest), f"{type(q).__name__} changed the state"
        assert answer == v.apply(q), type(q).__name__
        assert v.seq == seq + 1  # apply still sequences a query (old journals hold them)
    v._check()


def test_query_rejects_unknown_accounts_and_anything_that_is_not_a_read():
    v = _busy_venue()
    seq, digest = v.seq, snapshot.state_hash(v)
    (rej,) = v.query(QueryAccount(account=999))
    assert rej.reason is RejectReason.UNKNOWN_ACCOUNT and "999" in rej.message
    (rej,) = v.query(QueryBook(symbol=BTC, depth=0))
    assert rej.reason is RejectReason.INVALID_FIELD
    (rej,) = v.query(NewOrder(account=1, symbol=BTC, side=Side.BUY, qty=1, price=BTC_MARK))
    assert isinstance(rej, Rejected) and rej.reason is RejectReason.UNKNOWN_MESSAGE
    assert (v.seq, snapshot.state_hash(v)) == (seq, digest)


def test_the_server_answers_queries_without_journaling_them(tmp_path):
    from clients import Client
    from exchange_sim.server.loop import Server

    server = Server(config.default(), orders_endpoint="tcp://127.0.0.1:*", market_data_endpoint="tcp://127.0.0.1:*")
    server.journal = journal.Journal(tmp_path)
    server.start_up()
    orders, _ = server.bind()
    thread = threading.Thread(target=server.serve_forever, kwargs={"duration": 30}, daemon=True)
    thread.start()
    try:
        with Client(orders, account=1, api_key="demo-key-maker-1") as c:
            seq = server.venue.seq
            assert c.account().account == 1
            assert c.open_orders() == []
            assert c.book(BTC).symbol == BTC
            assert server.venue.seq == seq, "a query took a sequence number"
            c.buy(BTC, "0.01", "59000.0")
            assert server.venue.seq == seq + 1
    finally:
        server.stop()
        thread.join(10)
        server.close()
    server.journal.commit()
    records, _ = journal.read(tmp_path)
    names = [type(r.command).__name__ for r in records]
    assert names[-1] == "NewOrder" and not any(n.startswith("Query") for n in names), names
    assert [r.seq for r in records] == list(range(1, len(records) + 1))


def _private_reaches(path: Path) -> list[str]:
    """``x._name`` where ``x`` is not ``self``/``cls``: another object's private member."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            base = node.value
            if not (isinstance(base, ast.Name) and base.id in ("self", "cls")):
                out.append(f"{path.name}:{node.lineno} .{node.attr}")
    return out


def test_no_stage_reaches_into_another_modules_private_members():
    core = Path(sequencer.__file__).parent
    files = sorted(core.glob("*.py")) + [core.parent / "snapshot.py", core.parent / "web" / "sources.py"]
    reaches = [r for f in files for r in _private_reaches(f)]
    assert not reaches, reaches


def test_the_liquidation_engine_reads_executions_not_its_own_events():
    src = (Path(sequencer.__file__).parent / "liquidation.py").read_text(encoding="utf-8")
    assert "__name__" not in src and "events[before" not in src
    assert "self.v.execute(" in src  # the slice's fills come back as an Execution

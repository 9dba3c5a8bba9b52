"""Session-level messages: what a connection says that never reaches the core.

The venue core (:mod:`exchange_sim.core.sequencer`) speaks :data:`~protocol.messages.Command`
in and :data:`~protocol.messages.Event` out. A connection to the server
(:mod:`exchange_sim.server`) also needs to log in, keep itself alive, match
replies to requests and send many commands in one frame. Those messages live
here, tagged in the same ``msg`` field, so one decoder per socket still turns
any frame into the right class.

Client → server (one msgpack frame per message on a DEALER socket; REQ sockets
work too)::

    Login(account, api_key)            -> LoginOk | Rejected(AUTH_FAILED)
    Request(id, cmd)                   -> Reply(id, events)
    <bare Command>                     -> Reply(id=None, events)
    Batch(id, cmds=[...])              -> BatchReply(id, results=[[events] per cmd])
    Heartbeat()                        (no reply: any frame proves the client alive)
    Logout()                           -> LoggedOut
    CheckInvariants() / QueryStats()   -> Invariants / Stats (admin; bare replies)
    TakeSnapshot()                     -> SnapshotTaken (admin; with serve --data-dir)

Server → client on the same connection::

    Reply / BatchReply                 the private outcome of one request, all at once
    Push(events)                       private events caused by someone else's command
                                       (a maker's fills, a cancel-on-disconnect...)
    Heartbeat(ts, seq)                 every heartbeat interval
    LoggedOut(reason)                  the session ended (logout, heartbeat timeout, shutdown)
    Rejected                           a frame so broken no request id could be read

Server → subscribers on the PUB socket: one frame per message, ``topic`` bytes,
a NUL byte, then the msgpack body (see :func:`split_topic`). Topics are
``<SYMBOL>.book`` (:class:`~protocol.messages.BookDelta` and
:class:`BookHeartbeat`), ``<SYMBOL>.trade``, ``<SYMBOL>.mark``,
``<SYMBOL>.status``; other public events use ``<SYMBOL>.<lowercased class
name>`` or ``venue.<lowercased class name>`` when they carry no symbol. A
subscriber to ``b"BTC-PERP."`` gets everything about BTC-PERP.

Evolution follows :mod:`protocol.messages`: new fields get defaults. The
unions below are built from ``Command`` and ``Event`` at import time, so a
command or event added there is understood here with no edit.
"""

from __future__ import annotations

from typing import Annotated, Union, get_args

import msgspec
from msgspec import Meta

from protocol.messages import AccountField, Command, Event, EvTs, Rejected, _Command, _Msg

RequestId = Annotated[int, Meta(ge=0, le=2**63 - 1, description="the client's request id, echoed in the reply")]
Seq = Annotated[int, Meta(description="venue command sequence number (count)")]
TOPIC_SEP = b"\x00"


# ------------------------------------------------------- client -> server


class Login(_Command):
    """Bind this connection to ``account``. The admin key logs in as admin
    (any ``account`` number; an admin session may act on every account).

    ``cancel_on_disconnect``: when this session ends without a clean logout
    (heartbeat timeout) *or* with one, the server cancels every open order of
    the account, as Deribit's and Bybit's cancel-on-disconnect do.
    """

    account: AccountField
    api_key: Annotated[str, Meta(max_length=256, description="the account's API key (or the admin key)")]
    cancel_on_disconnect: Annotated[bool, Meta(
        description="cancel every open order of the account when this session ends")] = False
    #: admin only: also receive every account's private events (as Push) and
    #: the admin-only events (e.g. CascadeBoundHit): a monitoring view
    firehose: Annotated[bool, Meta(
        description="admin only: also receive every account's private events as Push")] = False
    # --- latency
    latency: Annotated[Annotated[str, Meta(max_length=64)] | None, Meta(
        description="latency profile for this session, a key of the server's [server.latency] profiles "
                    "(absent: the one its API key names, else the server's default)")] = None


class Logout(_Command):
    """End the session (cancel-on-disconnect applies if it was asked for)."""


class Heartbeat(_Command):
    """Both ways. Client: "still here" (any frame counts). Server: the venue
    clock ``ts`` (ns) and the last command sequence number ``seq``."""

    ts: Annotated[EvTs, Meta(description="server: venue time (ns since the Unix epoch, 64-bit); client: omit")] = 0
    seq: Annotated[int, Meta(description="server: the last command sequence number (count); client: omit")] = 0


class Request(_Command):
    """One command with an id the reply will carry."""

    id: RequestId
    cmd: Annotated[Command, Meta(description="the command (any message of the Commands section)")]


class Batch(_Command):
    """Many commands in one frame, applied in order, each answered on its own
    (a load generator's friend). Rate limits count every command."""

    id: RequestId
    cmds: Annotated[list[Command], Meta(description="the commands, applied in order (at most LoginOk.max_batch)")]


class CheckInvariants(_Command):
    """Admin: run the venue's invariant checks (money conserved, books sane).
    Answered ``Invariants(ok, message)``."""


class TakeSnapshot(_Command):
    """Admin: write a snapshot of the whole venue now (``serve --data-dir``).
    Answered ``SnapshotTaken``."""


class QueryStats(_Command):
    """Admin: the server's counters (sessions, commands, rejects, drops)."""


# ------------------------------------------------------- server -> client


class LoginOk(_Msg):
    """The login worked: who this session is, and the server's limits (0 in a
    limit field = an older server that did not say)."""

    account: Annotated[int, Meta(description="the account id logged in as")]
    admin: Annotated[bool, Meta(description="an admin session (may act on every account)")]
    session: Annotated[int, Meta(description="server-side session number, for logs")]
    protocol_version: Annotated[int, Meta(description="the server's protocol version number (PROTOCOL_VERSION)")]
    heartbeat_interval_ms: Annotated[int, Meta(description="send something at least this often (ms)")]
    heartbeat_timeout_ms: Annotated[int, Meta(description="a session silent this long is dropped (ms)")]
    cancel_on_disconnect: Annotated[bool, Meta(description="cancel-on-disconnect is on for this session")] = False
    rate_limit_per_s: Annotated[int, Meta(description="token bucket refill (commands per second; a Batch "
                                                      "costs one per command)")] = 0
    max_batch: Annotated[int, Meta(description="most commands in one Batch (count)")] = 0
    # --- wire contract (issue 14): the rest of the limits
    rate_limit_burst: Annotated[int, Meta(description="token bucket depth: commands sendable at once (count)")] = 0
    max_frame_bytes: Annotated[int, Meta(description="largest frame answered (bytes; larger: Rejected malformed; "
                                                     "16x this: the connection is dropped)")] = 0
    idempotency_window: Annotated[int, Meta(
        description="client order ids remembered per account (count of the latest accepted orders that carried "
                    "one), durable across restarts; 0 = only ids of open orders")] = 0
    # --- latency
    latency: Annotated[str, Meta(description="the latency profile this session got (\"\": none)")] = ""


class SnapshotTaken(_Msg):
    """A snapshot was written (answer to TakeSnapshot)."""

    seq: Annotated[int, Meta(description="commands applied when taken (count)")]
    state_hash: Annotated[str, Meta(description="SHA-256 of the snapshot (hex)")]
    file: Annotated[str, Meta(description="file name in the data dir")]


class LoggedOut(_Msg):
    """The session ended (logout, heartbeat timeout, shutdown)."""

    reason: Annotated[str, Meta(description="why, for a person")]
    cancelled_orders: Annotated[bool, Meta(description="cancel-on-disconnect cancelled the account's orders")] = False


class Reply(_Msg):
    """The private outcome of one request, in the order the venue made it:
    e.g. ``[OrderAccepted, Fill, Fill, AccountUpdate]`` or ``[Rejected]``.
    ``duplicate`` marks the stored outcome of an earlier new order with the
    same client order id (nothing was placed again)."""

    events: Annotated[list[Event], Meta(description="the requester's events, in the order they happened")]
    id: Annotated[int | None, Meta(description="the Request's id; null for a bare command")] = None
    duplicate: Annotated[bool, Meta(description="a stored earlier outcome: nothing was placed again")] = False


class BatchReply(_Msg):
    """The outcome of a Batch: one event list per command, in order (a
    refused command's list is ``[Rejected]``)."""

    id: Annotated[int, Meta(description="the Batch's id")]
    results: Annotated[list[list[Event]], Meta(description="one event list per command, in order")]
    duplicates: Annotated[list[int], Meta(
        description="indexes of commands answered from the idempotency store (nothing placed again)")] = []


class Push(_Msg):
    """Private events this session did not ask for (fills of its resting
    orders, cancels by cancel-on-disconnect or liquidation, ...)."""

    events: Annotated[list[Event], Meta(description="private events, in the order they happened")]


class Invariants(_Msg):
    """The venue's invariant check: ``ok`` or the first broken invariant."""

    seq: Annotated[int, Meta(description="commands applied when checked (count)")]
    ok: Annotated[bool, Meta(description="every invariant holds")]
    message: Annotated[str, Meta(description="the first broken invariant, for a person")] = ""


class Stats(_Msg):
    """The server's counters (answer to QueryStats)."""

    seq: Seq
    sessions: Annotated[int, Meta(description="sessions known (count)")]
    logged_in: Annotated[int, Meta(description="sessions logged in (count)")]
    commands: Annotated[int, Meta(description="commands that reached the venue (count)")]
    frames_in: Annotated[int, Meta(description="frames received (count)")]
    rejects: Annotated[dict[str, int], Meta(
        description="server-side rejects by reason (before the venue; `internal`: server faults) (count)")]
    dropped: Annotated[dict[str, int], Meta(description="frames dropped with no reply possible, by cause (count)")]
    published: Annotated[int, Meta(description="market-data frames published (count)")]


class BookHeartbeat(_Msg):
    """PUB, on ``<SYMBOL>.book`` every market-data heartbeat: the last delta
    ``seq`` of the symbol, so a quiet market still reveals a lost delta."""

    symbol: Annotated[str, Meta(description="instrument symbol")]
    seq: Annotated[int, Meta(description="the last BookDelta seq published for the symbol")]


# ------------------------------------------------------------- unions

SessionMessage = Union[Login, Logout, Heartbeat, Request, Batch, CheckInvariants, QueryStats, TakeSnapshot]
"""Everything a client may send besides a bare command."""

Inbound = Union[get_args(SessionMessage) + get_args(Command)]  # type: ignore[misc]
"""What the server's ROUTER accepts: a session message or a bare command."""

Outbound = Union[(Reply, BatchReply, Push, LoginOk, LoggedOut, Heartbeat, Invariants, Stats, SnapshotTaken) + get_args(Event)]  # type: ignore[misc]
"""What a client's DEALER receives."""

MarketData = Union[(BookHeartbeat,) + get_args(Event)]  # type: ignore[misc]
"""What a SUB socket receives (the body after the topic)."""


class RequestIn(_Command, tag="Request"):
    """Server side of :class:`Request`: the command stays raw so a bad one is
    answered with the request's id (decoded in a second step)."""

    id: RequestId
    cmd: msgspec.Raw


class BatchIn(_Command, tag="Batch"):
    """Server side of :class:`Batch`: each command decoded on its own, so one
    bad command is rejected alone."""

    id: RequestId
    cmds: list[msgspec.Raw]


_ServerFirstStage = Union[(Login, Logout, Heartbeat, RequestIn, BatchIn, CheckInvariants, QueryStats, TakeSnapshot) + get_args(Command)]  # type: ignore[misc]

_encoder = msgspec.msgpack.Encoder()
encode = _encoder.encode
_inbound = msgspec.msgpack.Decoder(_ServerFirstStage)
_command = msgspec.msgpack.Decoder(Command)
_outbound = msgspec.msgpack.Decoder(Outbound)
_market = msgspec.msgpack.Decoder(MarketData)

decode_inbound = _inbound.decode
"""Server: frame -> session message or bare command (``RequestIn``/``BatchIn``
keep their commands raw). Raises ``msgspec.DecodeError``/``ValidationError``."""

decode_command = _command.decode
decode_outbound = _outbound.decode
"""Client: ROUTER frame -> Reply, Push, LoginOk, ... or a bare Rejected."""


def topic(symbol: str | None, channel: str) -> bytes:
    """PUB topic bytes, e.g. ``topic("BTC-PERP", "book") == b"BTC-PERP.book"``."""
    return f"{symbol if symbol is not None else 'venue'}.{channel}".encode()


def split_topic(frame: bytes) -> tuple[bytes, bytes]:
    """Split a PUB frame into ``(topic, body)``."""
    t, sep, body = frame.partition(TOPIC_SEP)
    if not sep:
        raise msgspec.DecodeError("market-data frame has no topic separator")
    return t, body


def decode_market(frame: bytes):
    """Decode one PUB frame's body (topic stripped) into an event."""
    return _market.decode(split_topic(frame)[1])


__all__ = [
    "Login", "Logout", "Heartbeat", "Request", "Batch", "CheckInvariants", "QueryStats", "TakeSnapshot",
    "SnapshotTaken",
    "LoginOk", "LoggedOut", "Reply", "BatchReply", "Push", "Invariants", "Stats", "BookHeartbeat",
    "Rejected", "SessionMessage", "Inbound", "Outbound", "MarketData", "encode", "decode_inbound",
    "decode_command", "decode_outbound", "decode_market", "topic", "split_topic", "TOPIC_SEP",
]

"""Where each event goes, and what a bad frame is called.

Events from ``Venue.apply`` are routed by their class (cached once per class):

==========  ===============================================================
PUBLIC      no ``account`` field: Trade, BookDelta, MarkPrice, SymbolStatus,
            FundingRate, ... -> the PUB socket, topic ``<symbol>.<channel>``
PRIVATE     an ``account`` field: acks, fills, cancels, account updates,
            margin calls, funding payments... -> that account's sessions
            only (the requester's in its Reply, the others' in a Push)
REPLY       answers that only the asker gets: BookSnapshot, Instruments,
            LeverageTiers, Ledger (the answers to queries without an account)
ADMIN_EV    venue-wide events about accounts (CascadeBoundHit names who is
            still below MM): admin sessions only, never the PUB socket
==========  ===============================================================

Admin sessions that log in with ``firehose=True`` also get every private
event of every account, as pushes: the monitoring view the web page uses.

Two refinements: a ``Rejected`` goes to the requester only (another session
of the same account did not ask), and every event a *query* returns goes to
the requester only (an ``AccountUpdate`` answering ``QueryAccount`` is not
news for the account's other sessions).

Decode errors become typed rejects by :func:`classify_decode_error`, which
reads msgspec's messages (stable across its releases; a message it does not
recognise falls back to MALFORMED, never to a crash). An unknown field is
``INVALID_FIELD`` naming the field, the message and its valid fields (a
misspelled ``reduceOnly`` never places an order without it); a float where an
integer is expected (``5.0`` from a JavaScript or Lua encoder) is refused
with a message saying to send an integer, never truncated.
"""

from __future__ import annotations

import difflib
import re
from typing import get_args

import msgspec

from protocol.messages import (
    BookDelta,
    BookSnapshot,
    CascadeBoundHit,
    Command,
    FundingRate,
    FutureListed,
    FutureSettled,
    Instruments,
    Ledger,
    LeverageTiers,
    LiquidationNotice,
    MarkPrice,
    RejectReason,
    SymbolStatus,
    Trade,
)
from protocol import messages as M
from protocol.session import TOPIC_SEP, SessionMessage, topic

PUBLIC, PRIVATE, REPLY, ADMIN_EV = 0, 1, 2, 3

_REPLY_ONLY = (BookSnapshot, Instruments, LeverageTiers, Ledger)
# --- history: the market-history replies name no account, yet are answers, never publications
_REPLY_ONLY += (M.Trades, M.Candles, M.Ticker, M.Tickers, M.FundingHistory, M.PremiumIndex, M.PremiumIndexes)
_ADMIN_ONLY = (CascadeBoundHit,)
#: the channel of each public event class (keyed by class, so a name that is
#: no event cannot creep in); another public class: its lowercased name
CHANNELS: dict[type, str] = {
    BookDelta: "book",
    Trade: "trade",
    MarkPrice: "mark",
    SymbolStatus: "status",
    FundingRate: "funding",
    LiquidationNotice: "liquidation",
    # --- dated futures: listing and settlement are the instrument's status news
    FutureListed: "status",
    FutureSettled: "status",
}

#: the route of each event class seen so far (filled by :func:`route`; the
#: server's hot path reads it directly to save a call per event)
ROUTES: dict[type, int] = {}
_topic_cache: dict[tuple[type, str | None], bytes] = {}


def route(cls: type) -> int:
    r = ROUTES.get(cls)
    if r is None:
        fields = getattr(cls, "__struct_fields__", ())
        if cls in _REPLY_ONLY:
            r = REPLY
        elif cls in _ADMIN_ONLY:
            r = ADMIN_EV
        elif "account" in fields:
            r = PRIVATE
        else:
            r = PUBLIC
        ROUTES[cls] = r
    return r


def topic_prefix(event) -> bytes:
    """``b"<symbol>.<channel>\\x00"`` for a public event (cached)."""
    cls = type(event)
    symbol = getattr(event, "symbol", None)
    key = (cls, symbol)
    t = _topic_cache.get(key)
    if t is None:
        t = _topic_cache[key] = topic(symbol, CHANNELS.get(cls, cls.__name__.lower())) + TOPIC_SEP
    return t


_CLIENT_MESSAGES = {c.__name__: c for c in get_args(Command) + get_args(SessionMessage)}
_UNKNOWN_FIELD = re.compile(r"Object contains unknown field `(?P<field>[^`]*)`(?: - at `(?P<path>[^`]*)`)?")
# ``int`` or an optional one (``int | null``): either way a float is refused, saying so
_FLOAT_FOR_INT = re.compile(r"Expected `int(?: \| null)?`, got `float`(?: - at `(?P<path>[^`]*)`)?")
_PATH_STEP = re.compile(r"\.([A-Za-z_]\w*)|\[(\d+)\]")


def _at(frame: bytes | None, path: str):
    """The object at msgspec's error path (``$.cmds[2]``) in a loosely decoded
    frame, or None when the frame cannot be read that far."""
    if frame is None:
        return None
    try:
        obj = msgspec.msgpack.decode(frame)
    except Exception:
        return None
    for name, index in _PATH_STEP.findall(path[1:]):
        try:
            obj = obj[name] if name else obj[int(index)]
        except (KeyError, IndexError, TypeError):
            return None
    return obj


def _unknown_field_text(field: str, path: str, frame: bytes | None) -> str:
    obj = _at(frame, path)
    cls = _CLIENT_MESSAGES.get(obj.get("msg")) if isinstance(obj, dict) else None
    if cls is None:
        return f"unknown field `{field}` at `{path}`: it is refused, not ignored"
    fields = [f.name for f in msgspec.structs.fields(cls)]
    squashed = {f.replace("_", "").lower(): f for f in fields}
    guess = squashed.get(field.replace("_", "").replace("-", "").lower()) or next(
        iter(difflib.get_close_matches(field, fields, n=1)), None)
    hint = f" (did you mean `{guess}`?)" if guess else ""
    return (f"unknown field `{field}` in {cls.__name__}{hint}: it is refused, not ignored; "
            f"{cls.__name__} has {', '.join(fields) or 'no fields'}")


def classify_decode_error(exc: Exception, frame: bytes | None = None) -> tuple[RejectReason, str]:
    """A typed reason and a readable message for a frame msgspec refused
    (``frame``, when given, lets the message name the command and its fields)."""
    text = str(exc)
    if isinstance(exc, UnicodeDecodeError):
        return RejectReason.MALFORMED, f"a string is not valid UTF-8: {text}"
    if not isinstance(exc, msgspec.ValidationError):
        return RejectReason.MALFORMED, f"not a msgpack message: {text}"
    m = _UNKNOWN_FIELD.match(text)
    if m:
        return RejectReason.INVALID_FIELD, _unknown_field_text(m["field"], m["path"] or "$", frame)
    m = _FLOAT_FOR_INT.match(text)
    if m:
        where = (m["path"] or "$").rpartition(".")[2]
        return RejectReason.MALFORMED, (  # a wrong type, as a string for an int is
            f"`{where}` must be an integer (prices in ticks, quantities in lots, money in minor units); "
            f"got a float: send 5, not 5.0 ({text})")
    if text.startswith("Invalid value") and "`$.msg`" in text:
        return RejectReason.UNKNOWN_MESSAGE, f"unknown message type ({text})"
    if "`$.msg`" in text or "missing required field `msg`" in text:
        return RejectReason.MALFORMED, f"no message type ({text})"
    if text.startswith(("Expected `int` <", "Expected `int` >", "Expected `str` of length",
                        "Expected `str` matching", "Expected `array` of length", "Invalid enum value",
                        "Expected `int` of", "Expected `float` <", "Expected `float` >")):
        return RejectReason.INVALID_FIELD, text
    return RejectReason.MALFORMED, text

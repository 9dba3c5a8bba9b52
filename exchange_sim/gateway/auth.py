"""Binance's request signing (SIGNED endpoints): the ``X-MBX-APIKEY`` header
names the key; ``signature`` is HMAC-SHA256, hex, of the query string
concatenated with the body (without the signature itself); ``timestamp``
(ms) must lie within ``recvWindow`` ms (default 5000, at most 60000) behind
the gateway's clock, and at most 1000 ms ahead of it."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from exchange_sim.gateway.errors import BinanceError, mandatory

DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60000
AHEAD_MS = 1000  # Binance: a timestamp up to 1 s in the server's future is accepted


@dataclass(frozen=True, slots=True)
class Key:
    account: int
    api_key: str
    secret: str

    def __repr__(self) -> str:  # never print a secret by accident
        return f"Key(account={self.account}, api_key='***')"


def keys_from_config(cfg) -> dict[str, Key]:
    """The signing keys of the config's ``[[server.accounts]]`` that have a ``secret``."""
    return {a.api_key: Key(a.account, a.api_key, a.secret) for a in cfg.server.accounts if a.secret}


def _strip_signature(raw: str) -> tuple[str, str | None]:
    parts, sig = [], None
    for part in raw.split("&") if raw else ():
        if part.startswith("signature="):
            sig = part[len("signature="):]
        else:
            parts.append(part)
    return "&".join(parts), sig


def check(keys: dict[str, Key], api_key: str | None, query: str, body: str, params: dict, now_ms: int) -> Key:
    """The key of a correctly signed, timely request, else Binance's error."""
    if not api_key:
        raise BinanceError(-2014, "API-key format invalid.", 401)
    key = keys.get(api_key)
    if key is None:
        raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
    q, sig_q = _strip_signature(query)
    b, sig_b = _strip_signature(body)
    sig = sig_q or sig_b
    if "timestamp" not in params:
        raise mandatory("timestamp")
    if not sig:
        raise mandatory("signature")
    try:
        ts = int(params["timestamp"])
        window = int(params.get("recvWindow", DEFAULT_RECV_WINDOW_MS))
    except ValueError:
        raise BinanceError(-1100, "Illegal characters found in parameter 'timestamp' or 'recvWindow'.") from None
    if not 0 < window <= MAX_RECV_WINDOW_MS:
        raise BinanceError(-1131, "recvWindow must be less than 60000")
    want = hmac.new(key.secret.encode(), (q + b).encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, sig.lower()):
        raise BinanceError(-1022, "Signature for this request is not valid.")
    if ts > now_ms + AHEAD_MS or now_ms - ts > window:
        raise BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")
    return key

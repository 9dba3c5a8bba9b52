"""`exchange-sim gateway`: Binance USD-M futures REST in front of a running
venue (docs/binance-gateway.md). Needs the ``gateway`` extra (aiohttp):

    exchange-sim gateway --orders tcp://127.0.0.1:7001 --market-data tcp://127.0.0.1:7002 --http 127.0.0.1:8081

API keys and their HMAC secrets are the config's ``[[server.accounts]]``
``api_key`` / ``secret`` (the default config's demo accounts have demo secrets).
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--config", help="TOML config of the venue: endpoints and the accounts' api_key/secret")
    p.add_argument("--orders", help="the venue's ROUTER endpoint (default: from the config)")
    p.add_argument("--market-data", help="the venue's PUB endpoint, for the WebSocket streams "
                                         "(default: from the config)")
    p.add_argument("--http", default="127.0.0.1:8081", help="HOST:PORT to serve HTTP on (port 0: any free port)")
    p.add_argument("--server-key", help="the server's CURVE public key, if it uses CURVE")
    p.add_argument("--duration", type=float, help="stop after this many seconds (default: until SIGINT/SIGTERM)")
    return p


def run_from_args(args: argparse.Namespace) -> int:
    try:
        from exchange_sim.gateway import app
    except ImportError as exc:  # aiohttp missing
        raise SystemExit(f"exchange-sim gateway needs the gateway extra: pip install 'exchange-sim[gateway]' ({exc})")
    from exchange_sim import config as config_mod
    from exchange_sim.gateway.auth import keys_from_config

    cfg = config_mod.load(args.config) if args.config else config_mod.default()
    host, _, port = args.http.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--http must be HOST:PORT, not {args.http!r}")
    return app.run(args.orders or cfg.server.orders_endpoint, host, int(port), keys_from_config(cfg),
                   args.server_key, args.duration, args.market_data or cfg.server.market_data_endpoint)

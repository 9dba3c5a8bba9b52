"""``exchange-sim`` command line.

    exchange-sim            a short in-process session: orders, fills, book, account
    exchange-sim run        the same, explicitly
    exchange-sim schema     the JSON Schema of every protocol message
    exchange-sim serve      the venue over ZeroMQ (sessions, orders, market data)
    exchange-sim keys       a new CURVE key pair for the server's config
    exchange-sim explain    every margin figure of an account (the article's example by default)
    exchange-sim load       many accounts, a target order rate, shocks: live figures and a JSON report
"""

from __future__ import annotations

import argparse
import json
import sys

from exchange_sim import config as config_mod


def _cmd_schema(args: argparse.Namespace) -> int:
    from protocol.schema import json_schema

    json.dump(json_schema(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from exchange_sim.session import run_session

    cfg = config_mod.load(args.config) if args.config else config_mod.default()
    run_session(cfg, out=sys.stdout)
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    import msgspec

    from exchange_sim import scenario
    from exchange_sim.risk.explain import render

    cfg = config_mod.load(args.config) if args.config else config_mod.default()
    if args.profile:
        if args.profile not in cfg.risk.profiles:
            raise ValueError(f"unknown profile {args.profile!r}; the config has {sorted(cfg.risk.profiles)}")
        cfg = msgspec.structs.replace(cfg, risk=msgspec.structs.replace(cfg.risk, profile=args.profile))
    venue = scenario.build(cfg, scenario.load(args.scenario))
    ex = venue.explain(scenario.ACCOUNT)
    if args.json:
        sys.stdout.write(msgspec.json.encode(ex).decode() + "\n")
    else:
        print(render(ex))
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from exchange_sim.server import run

    import zmq

    from pathlib import Path

    text = Path(args.config).read_text(encoding="utf-8") if args.config else config_mod.default_text()
    cfg = config_mod.loads(text)
    feed = args.feed or ("csv" if args.feed_csv else None)
    try:
        return run(cfg, orders=args.orders, market_data=args.market_data, feed=feed, feed_csv=args.feed_csv,
                   seed=args.seed, speed=args.speed, duration=args.duration, data_dir=args.data_dir,
                   config_text=text if args.config or not args.data_dir else config_mod.default_text())
    except zmq.ZMQError as exc:
        raise OSError(f"cannot serve: {exc}") from None


def _cmd_keys(args: argparse.Namespace) -> int:
    import zmq

    public, secret = zmq.curve_keypair()
    print("# exchange-sim server CURVE key pair: put these in the [server] table of your")
    print("# config; give clients the public key only (Client(..., server_key=...)).")
    print(f'curve_public_key = "{public.decode()}"')
    print(f'curve_secret_key = "{secret.decode()}"')
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    import msgspec

    from exchange_sim import replay, snapshot
    from exchange_sim.journal import JournalCorrupt

    directory = args.data_dir
    try:
        if args.verify:
            results = replay.verify(directory)
            for seq, ok in results:
                print(f"seq {seq}: state hash {'matches' if ok else 'DIFFERS from'} the snapshot's")
            if not results:
                print("no snapshot reached by the journal: nothing to verify against")
            return 0 if all(ok for _, ok in results) else 1
        out = open(args.events, "wb") if args.events else None
        enc = msgspec.msgpack.Encoder()
        venue = None
        n = 0
        try:
            for rec, events, venue in replay.replay(directory, until=args.until, from_start=args.from_start):
                n += 1
                if out is not None:
                    frame = enc.encode([rec.seq, events])
                    out.write(len(frame).to_bytes(4, "little") + frame)
                if args.print:
                    print(f"#{rec.seq} {type(rec.command).__name__} {msgspec.json.encode(rec.command).decode()}")
                    for ev in events:
                        print(f"    {type(ev).__name__} {msgspec.json.encode(ev).decode()}")
        finally:
            if out is not None:
                out.close()
    except JournalCorrupt as exc:
        print(f"exchange-sim: {exc}", file=sys.stderr)
        return 3
    if venue is None:
        print("nothing to replay after the snapshot")
        return 0
    print(f"replayed {n} commands; venue at seq {venue.seq}; state hash {snapshot.state_hash(venue)}")
    return 0


def _cmd_prune(args: argparse.Namespace) -> int:
    from pathlib import Path

    from exchange_sim import journal

    removed = journal.prune(Path(args.data_dir))
    for path in removed:
        print(f"removed {path.name}")
    print(f"{len(removed)} files removed")
    return 0


def _cmd_web(args: argparse.Namespace) -> int:
    import logging
    import signal
    import threading

    from exchange_sim.web.bridge import WebApp
    from exchange_sim.web.sources import LiveSource, ReplaySource

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.data_dir:
        source = ReplaySource(args.data_dir, account=args.account if args.account is not None else 1,
                              speed=args.speed)
    else:
        cfg = config_mod.load(args.config) if args.config else config_mod.default()
        srv = cfg.server
        orders = args.orders or srv.orders_endpoint
        market_data = args.market_data or srv.market_data_endpoint
        if args.api_key:  # one account's key: that account only
            if args.account is None:
                raise ValueError("--api-key needs --account")
            source = LiveSource(cfg, orders, market_data, args.account, args.api_key, args.server_key, admin=False)
        else:
            source = LiveSource(cfg, orders, market_data, args.account if args.account is not None else 1,
                                args.admin_key or srv.admin_key, args.server_key, admin=True)
    app = WebApp(source, host=args.host, port=args.port)
    print(f"exchange-sim web: open {app.url}  ({source.mode}: {source.label})", flush=True)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: threading.Thread(target=app.shutdown, daemon=True).start())
    app.serve_forever()
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from exchange_sim import demo

    demo.run(fast=args.fast, stay=args.stay)
    return 0


def _cmd_load(args: argparse.Namespace) -> int:
    from clients.loadgen import run_from_args

    return run_from_args(args)


def _cmd_stress(args: argparse.Namespace) -> int:
    from exchange_sim.stress.command import run_from_args

    return run_from_args(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="exchange-sim", description="A simulated crypto-derivatives venue.")
    sub = parser.add_subparsers(dest="command")
    p_run = sub.add_parser("run", help="run a short in-process trading session and print what happens")
    p_run.add_argument("--config", help="TOML config (default: the embedded one)")
    p_run.set_defaults(func=_cmd_run)
    p_demo = sub.add_parser("demo", help="start the venue and tell the source article's story, narrated")
    p_demo.add_argument("--fast", action="store_true", help="no pauses, a 1 s warm-up (for CI)")
    p_demo.add_argument("--stay", action="store_true", help="keep the venue up after the story (Ctrl-C stops it)")
    p_demo.set_defaults(func=_cmd_demo)
    p_schema = sub.add_parser("schema", help="print the JSON Schema of the protocol")
    p_schema.set_defaults(func=_cmd_schema)
    p_serve = sub.add_parser("serve", help="serve the venue over ZeroMQ until SIGINT/SIGTERM")
    p_serve.add_argument("--config", help="TOML config (default: the embedded one)")
    p_serve.add_argument("--orders", help="ROUTER endpoint, e.g. tcp://127.0.0.1:7001 or ipc:///tmp/es.sock "
                         "(port * = any free port)")
    p_serve.add_argument("--market-data", help="PUB endpoint, e.g. tcp://127.0.0.1:7002")
    p_serve.add_argument("--feed", choices=["none", "random-walk", "csv"], help="index price feed (default: config)")
    p_serve.add_argument("--feed-csv", metavar="PATH", help="CSV price path time,asset,price (implies --feed csv)")
    p_serve.add_argument("--seed", type=int, help="random-walk seed")
    p_serve.add_argument("--speed", type=float, help="feed: simulated seconds per wall second")
    p_serve.add_argument("--duration", type=float, help="stop by itself after this many seconds")
    p_serve.add_argument("--data-dir", help="journal + snapshots here; a restart recovers the state exactly")
    p_serve.set_defaults(func=_cmd_serve)
    p_keys = sub.add_parser("keys", help="print a new CURVE key pair for [server]")
    p_keys.set_defaults(func=_cmd_keys)
    p_explain = sub.add_parser("explain", help="explain an account's margin: haircuts, requirement, scenarios, modes")
    p_explain.add_argument("scenario", nargs="?", help="scenario TOML (default: the source article's example)")
    p_explain.add_argument("--config", help="TOML config (default: the embedded one)")
    p_explain.add_argument("--profile", help="portfolio-margin profile, e.g. stress")
    p_explain.add_argument("--json", action="store_true", help="print the Explain message as JSON")
    p_explain.set_defaults(func=_cmd_explain)
    p_replay = sub.add_parser("replay", help="rebuild a venue offline from a data dir's snapshot + journal")
    p_replay.add_argument("data_dir")
    p_replay.add_argument("--until", type=int, help="stop after this sequence number")
    p_replay.add_argument("--from-start", action="store_true", help="ignore snapshots: replay the journal alone")
    p_replay.add_argument("--events", help="write each command's events to this file (u32 length + msgpack [seq, events])")
    p_replay.add_argument("--print", action="store_true", help="print every command and its events as JSON lines")
    p_replay.add_argument("--verify", action="store_true", help="replay the journal alone and check every snapshot's state hash")
    p_replay.set_defaults(func=_cmd_replay)
    p_prune = sub.add_parser("prune", help="delete journal segments and snapshots older than the newest snapshot")
    p_prune.add_argument("data_dir")
    p_prune.set_defaults(func=_cmd_prune)
    p_web = sub.add_parser("web", help="serve a page that watches a running venue, or replays a data dir")
    p_web.add_argument("--data-dir", help="replay this data dir instead of watching a live venue")
    p_web.add_argument("--host", default="127.0.0.1")
    p_web.add_argument("--port", type=int, default=8080, help="HTTP port (0 = any free port)")
    p_web.add_argument("--config", help="TOML config of the venue (endpoints, admin key, thresholds)")
    p_web.add_argument("--orders", help="the venue's ROUTER endpoint (default: from the config)")
    p_web.add_argument("--market-data", help="the venue's PUB endpoint (default: from the config)")
    p_web.add_argument("--admin-key", help="admin key (default: the config's): any account may be shown")
    p_web.add_argument("--account", type=int, help="account to show first (default 1)")
    p_web.add_argument("--api-key", help="an account's key instead of the admin key: that account only")
    p_web.add_argument("--server-key", help="the server's CURVE public key, if it uses CURVE")
    p_web.add_argument("--speed", type=float, default=20.0, help="replay: commands per second when playing")
    p_web.set_defaults(func=_cmd_web)
    from clients.loadgen import __doc__ as load_doc, add_arguments as load_arguments

    p_load = sub.add_parser("load", help="load a venue: many accounts, an order rate, shocks; live figures, JSON report",
                            description=load_doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    load_arguments(p_load).set_defaults(func=_cmd_load)
    from exchange_sim.stress.command import __doc__ as stress_doc, add_arguments as stress_arguments

    p_stress = sub.add_parser("stress", help="what-if scenarios over a venue state, each with its full cascade; report",
                              description=stress_doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    stress_arguments(p_stress).set_defaults(func=_cmd_stress)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["run", *(argv or [])])
    try:
        return args.func(args)
    except (ValueError, OSError) as exc:
        print(f"exchange-sim: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

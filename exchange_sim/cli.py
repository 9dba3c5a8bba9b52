"""``exchange-sim`` command line.

    exchange-sim            a short in-process session: orders, fills, book, account
    exchange-sim run        the same, explicitly
    exchange-sim schema     the JSON Schema of every protocol message
    exchange-sim serve      the venue over ZeroMQ (sessions, orders, market data)
    exchange-sim config     the effective configuration (default or --config FILE) as TOML
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
            raise ValueError(f"unknown profile {args.profile!r}; valid: {', '.join(sorted(cfg.risk.profiles))}")
        cfg = msgspec.structs.replace(cfg, risk=msgspec.structs.replace(cfg.risk, profile=args.profile))
    venue = scenario.build(cfg, scenario.load(args.scenario))
    ex = venue.explain(scenario.ACCOUNT)
    if args.json:
        from exchange_sim import jsonview

        sys.stdout.write(jsonview.encode(ex, venue.settle.decimals, units=True) + "\n")
    else:
        print(render(ex))
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    cfg = config_mod.load(args.config) if args.config else config_mod.default()
    source = f"the embedded default merged with {args.config}" if args.config else "the embedded default"
    sys.stdout.write(config_mod.dumps(cfg, header=f"exchange-sim effective configuration: {source}.\n"
                                      "Copy it, keep only what you change, and pass it with --config.\n"))
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from exchange_sim.server import run

    import zmq

    from pathlib import Path

    text = Path(args.config).read_text(encoding="utf-8") if args.config else config_mod.default_text()
    cfg = config_mod.loads(text)
    if args.liquidity:  # --- house liquidity: the profile goes into the config the data dir keeps
        from exchange_sim.liquidity import load_profile, with_liquidity

        cfg = with_liquidity(cfg, load_profile(args.liquidity, cfg))
    if args.replay and args.liquidity:
        raise ValueError("--replay and --liquidity: choose one (the recorded book is the liquidity of a replay)")
    if args.replay:  # --- replay: recorded funding replaces the venue's own
        import msgspec

        from exchange_sim.replay_market import has_funding, read

        if has_funding(read(args.replay)):
            cfg = msgspec.structs.replace(cfg, funding=msgspec.structs.replace(cfg.funding, automatic=False))
    feed = args.feed or ("csv" if args.feed_csv else None)
    try:
        return run(cfg, orders=args.orders, market_data=args.market_data, feed=feed, feed_csv=args.feed_csv,
                   seed=args.seed, speed=args.speed, duration=args.duration, data_dir=args.data_dir,
                   liquidity=bool(args.liquidity), replay=args.replay,
                   # the data dir keeps the whole effective config, not a partial file whose
                   # meaning would change with the next version's default
                   config_text=config_mod.dumps(cfg, header="the config this data dir was created with"))
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


#: ``replay --verify`` exit codes beyond 0 (every hash matches) and 2 (a bad dir)
VERIFY_FAILED, VERIFY_NOTHING = 1, 4


def _cmd_replay(args: argparse.Namespace) -> int:
    import msgspec

    from exchange_sim import jsonview, replay, snapshot
    from exchange_sim.journal import JournalCorrupt

    directory = args.data_dir
    try:
        if args.verify:
            return _verify(directory)
        start = replay.start_point(directory, until=args.until, from_start=args.from_start)
        print(replay.describe(start[1]), flush=True)
        out = open(args.events, "wb") if args.events else None
        enc = msgspec.msgpack.Encoder()
        venue = start[0]
        n = 0
        try:
            for rec, events, venue in replay.replay(directory, until=args.until, start=start):
                n += 1
                if out is not None:
                    frame = enc.encode([rec.seq, events])
                    out.write(len(frame).to_bytes(4, "little") + frame)
                if args.print:  # money exact (jsonview): people read these lines
                    dec = venue.settle.decimals
                    print(f"#{rec.seq} {type(rec.command).__name__} {jsonview.encode(rec.command, dec)}")
                    for ev in events:
                        print(f"    {type(ev).__name__} {jsonview.encode(ev, dec)}")
        finally:
            if out is not None:
                out.close()
    except JournalCorrupt as exc:
        print(f"exchange-sim: {exc}", file=sys.stderr)
        return 3
    print(f"replayed {n} commands; venue at seq {venue.seq}; state hash {snapshot.state_hash(venue)}")
    return 0


def _verify(directory: str) -> int:
    from exchange_sim import replay

    checks, notes = replay.verify(directory)
    for note in notes:
        print(f"note: {note}")
    if not checks:
        print(f"exchange-sim: nothing to verify: {directory} has no snapshot the journal reaches, so there is no "
              "recorded state hash to compare the replay with (a server writes one every "
              "journal.snapshot_every commands and when it stops)", file=sys.stderr)
        return VERIFY_NOTHING
    for c in checks:
        verdict = "PASS" if c.ok else "FAIL"
        print(f"{verdict} seq {c.seq}: replayed from seq 1 {c.replayed}, snapshot {c.recorded}")
    failed = [c.seq for c in checks if not c.ok]
    if failed:
        print(f"FAIL: the replayed state differs from {len(failed)} of {len(checks)} snapshots "
              f"(seq {', '.join(map(str, failed))})")
        return VERIFY_FAILED
    what = "the snapshot's state hash" if len(checks) == 1 else f"all {len(checks)} snapshots' state hashes"
    print(f"PASS: the journal replayed from seq 1 reproduces {what}")
    return 0


def _cmd_prune(args: argparse.Namespace) -> int:
    from exchange_sim import journal, replay

    directory = replay.require_data_dir(args.data_dir)
    snaps = journal.snapshots(directory)
    if not snaps:
        print(f"nothing to prune: {directory} has no snapshot yet, and the journal is all there is")
        return 0
    removed = journal.prune(directory)
    for path in removed:
        print(f"removed {path.name}")
    if not removed:
        print(f"nothing to prune: no journal segment or snapshot in {directory} is older than the newest snapshot "
              f"({snaps[-1].name})")
    else:
        print(f"{len(removed)} files removed; the newest snapshot, {snaps[-1].name}, and the journal after it remain")
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

    demo.run(fast=args.fast, stay=args.stay, data_dir=args.data_dir)
    return 0  # also after Ctrl-C, which stops the venue cleanly, as serve does


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
    p_demo.add_argument("--data-dir", help="journal the run in this new (or empty) dir: `exchange-sim replay DIR` "
                        "and `exchange-sim web --data-dir DIR` replay it step by step")
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
    p_serve.add_argument("--speed", type=float, help="feed (or --replay): simulated seconds per wall second")
    p_serve.add_argument("--duration", type=float, help="stop by itself after this many seconds")
    p_serve.add_argument("--data-dir", help="journal + snapshots here; a restart recovers the state exactly")
    p_serve.add_argument("--liquidity", metavar="DEFAULT|PROFILE.toml",
                         help="house liquidity: a market maker per symbol, an arbitrageur and a noise flow "
                              "trading as venue accounts (DEFAULT: the config's [liquidity]; a file merges onto it); "
                              "the liquidation engine then waits reform_ms after a flag so the book re-forms")
    p_serve.add_argument("--replay", metavar="DATA",
                         help="play recorded market data (Tardis-style CSVs or time,symbol,kind,side,price,amount; "
                              "a file or a directory) as the venue's index, mark and book, at --speed x real time")
    p_serve.set_defaults(func=_cmd_serve)
    p_config = sub.add_parser("config", help="print the effective configuration as TOML (default or --config FILE)",
                              description="Print the effective configuration as TOML: the embedded default, or\n"
                              "--config FILE merged onto it. The output reads back to the same configuration.\n\n"
                              + config_mod.MERGE_RULES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p_config.add_argument("--config", help="TOML config to merge onto the default")
    p_config.set_defaults(func=_cmd_config)
    p_keys = sub.add_parser("keys", help="print a new CURVE key pair for [server]")
    p_keys.set_defaults(func=_cmd_keys)
    p_explain = sub.add_parser("explain", help="explain an account's margin: haircuts, requirement, scenarios, modes")
    p_explain.add_argument("scenario", nargs="?", help="scenario TOML (default: the source article's example)")
    p_explain.add_argument("--config", help="TOML config (default: the embedded one)")
    p_explain.add_argument("--profile", help="portfolio-margin profile, e.g. stress")
    p_explain.add_argument("--json", action="store_true",
                           help="print the Explain message as JSON; USD money as decimal strings rounded half-even "
                           "to the settlement asset's minor unit (6 decimals for USDT), prices per unit with 8 "
                           "decimals, ratios and rates as numbers (the output's \"units\" says so too)")
    p_explain.set_defaults(func=_cmd_explain)
    p_replay = sub.add_parser("replay", help="rebuild a venue offline from a data dir's snapshot + journal",
                              description="Rebuild a venue offline from a data dir: from the newest snapshot "
                              "that has journaled commands after it, else from the journal's start (the first "
                              "line says which). --verify exits 0 when every hash matches, 1 when one differs, "
                              "4 when there is no snapshot to compare with; 2 for a missing or empty dir, "
                              "3 for a corrupt journal.")
    p_replay.add_argument("data_dir")
    p_replay.add_argument("--until", type=int, help="stop after this sequence number")
    p_replay.add_argument("--from-start", action="store_true", help="ignore snapshots: replay the journal alone")
    p_replay.add_argument("--events", help="write each command's events to this file (u32 length + msgpack [seq, events])")
    p_replay.add_argument("--print", action="store_true", help="print every command and its events as JSON lines "
                          "(USD money figures as decimal strings, as in explain --json)")
    p_replay.add_argument("--verify", action="store_true", help="replay the journal alone from seq 1 and compare the state hash with every snapshot's: "
                          "PASS or FAIL, both hashes")
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
    # --- gateway: Binance USD-M futures REST in front of the venue (docs/binance-gateway.md)
    from exchange_sim.gateway.command import __doc__ as gateway_doc, add_arguments as gateway_arguments, run_from_args

    p_gateway = sub.add_parser("gateway", help="serve Binance USD-M futures REST in front of a running venue",
                               description=gateway_doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    gateway_arguments(p_gateway).set_defaults(func=run_from_args)
    parser.commands = sub.choices  # name -> subparser: an unknown flag is reported with its command's usage
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    args, unknown = parser.parse_known_args(argv)
    named = args.command is not None
    if not named:
        args, unknown = parser.parse_known_args(["run", *argv])
    if unknown:  # argparse would show the top-level usage: show the command's own
        (parser.commands[args.command] if named else parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return args.func(args)
    except BrokenPipeError:  # `exchange-sim replay DIR --print | head`: the reader has all it wanted
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 1
    except (ValueError, OSError) as exc:
        print(f"exchange-sim: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

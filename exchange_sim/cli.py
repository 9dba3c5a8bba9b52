"""``exchange-sim`` command line.

    exchange-sim            a short in-process session: orders, fills, book, account
    exchange-sim run        the same, explicitly
    exchange-sim schema     the JSON Schema of every protocol message
    exchange-sim explain    every margin figure of an account (the article's example by default)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="exchange-sim", description="A simulated crypto-derivatives venue.")
    sub = parser.add_subparsers(dest="command")
    p_run = sub.add_parser("run", help="run a short in-process trading session and print what happens")
    p_run.add_argument("--config", help="TOML config (default: the embedded one)")
    p_run.set_defaults(func=_cmd_run)
    p_schema = sub.add_parser("schema", help="print the JSON Schema of the protocol")
    p_schema.set_defaults(func=_cmd_schema)
    p_explain = sub.add_parser("explain", help="explain an account's margin: haircuts, requirement, scenarios, modes")
    p_explain.add_argument("scenario", nargs="?", help="scenario TOML (default: the source article's example)")
    p_explain.add_argument("--config", help="TOML config (default: the embedded one)")
    p_explain.add_argument("--profile", help="portfolio-margin profile, e.g. stress")
    p_explain.add_argument("--json", action="store_true", help="print the Explain message as JSON")
    p_explain.set_defaults(func=_cmd_explain)
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

"""Where a liquidity profile comes from: ``--liquidity DEFAULT|PROFILE.toml``.

``DEFAULT`` is the ``[liquidity]`` table of the effective config (the
embedded one, or as a ``--config`` file changed it). A ``PROFILE.toml`` holds
the keys of that table at its top level (``[maker]``, ``[arb]``, ``[noise]``
for the sub-tables) and is merged onto it, so it holds only what it changes;
an unknown key is refused, named.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import msgspec

from exchange_sim import config as config_mod
from exchange_sim.config import Config, LiquidityParams

DEFAULT = "DEFAULT"


def load_profile(spec: str, cfg: Config) -> LiquidityParams:
    """The profile ``spec`` names (``DEFAULT`` or a TOML path), merged onto ``cfg.liquidity``.
    Raises ``ValueError`` naming the bad key or value."""
    if spec == DEFAULT:
        return cfg.liquidity
    try:
        raw = tomllib.loads(Path(spec).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"--liquidity {spec}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"--liquidity {spec}: not TOML: {exc}") from None
    if "liquidity" in raw:
        raise ValueError(f"--liquidity {spec}: put the keys at the top level, without a [liquidity] header")
    whole = msgspec.to_builtins(cfg)
    whole["liquidity"] = config_mod.merge(whole["liquidity"], raw, ("liquidity",))
    try:  # the config's own validation: unknown keys and bad values named, symbols checked
        return config_mod.from_raw(whole).liquidity
    except ValueError as exc:
        raise ValueError(f"--liquidity {spec}: {exc}") from None


def with_liquidity(cfg: Config, profile: LiquidityParams) -> Config:
    """``cfg`` serving ``profile``: its ``[liquidity]`` table replaced and the
    liquidation grace raised to the profile's ``reform_ms`` (the book gets that
    long to re-form after a jump before a liquidation sells into it)."""
    grace = max(cfg.liquidation.grace_ms, profile.reform_ms)
    return msgspec.structs.replace(
        cfg, liquidity=profile, liquidation=msgspec.structs.replace(cfg.liquidation, grace_ms=grace))

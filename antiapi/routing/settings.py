"""Routing data: flow/chain entries and the routing settings (pure: stdlib + msgspec).

These Structs are what the state store persists (JSON) and what the admin API will edit; the
config file's ``flows:``/``routing:`` sections are converted into them by the server.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = ["DEFAULT_SETTINGS", "Chain", "Entry", "RoutingSettings", "STRATEGIES", "Strategy", "settings_from"]

Strategy = Literal["ordered", "round_robin", "least_used"]
STRATEGIES: tuple[str, ...] = ("ordered", "round_robin", "least_used")


class Entry(msgspec.Struct, frozen=True, omit_defaults=True):
    """One step of a flow or chain.

    ``provider`` is a provider name (``openai``, ``codex:me@example.com``) or a provider type
    (``codex``: every account of that type, in creation order). ``account`` narrows a type to one
    account label. ``model`` is the upstream model id (for chains: default the chain's model id).
    """

    provider: str
    model: str | None = None
    account: str | None = None


class Chain(msgspec.Struct, frozen=True, omit_defaults=True):
    """A flow (``route:<name>``) or an official model's account chain."""

    entries: tuple[Entry, ...] = ()
    strategy: Strategy | None = None


class RoutingSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Every routing switch, with its default."""

    #: an official model id with no explicit chain expands to every account serving it
    smart_switch: bool = True
    #: default ordering of a chain: failover only / rotate / least-used quota first
    strategy: Strategy = "ordered"
    #: used when a request names no model
    default_model: str | None = None
    #: model or flow serving background requests (model names matching ``background_patterns``)
    background_model: str | None = None
    background_patterns: tuple[str, ...] = ("*haiku*",)
    #: keep one conversation on one account while it is healthy
    session_affinity: bool = True
    affinity_ttl: float = 3600.0
    affinity_size: int = 10_000
    #: cooldown when the upstream gives no reset time: base seconds, doubling up to max
    cooldown_base: float = 5.0
    cooldown_max: float = 600.0
    #: hold a stream's first bytes up to this many seconds so an immediate in-stream error can
    #: still fail over (0: commit at the first byte)
    first_event_wait: float = 5.0
    usage_retention_days: float = 90.0
    usage_max_rows: int = 2_000_000


DEFAULT_SETTINGS = RoutingSettings()

_FIELDS = frozenset(f.name for f in msgspec.structs.fields(RoutingSettings))


def settings_from(values: dict[str, Any], base: RoutingSettings = DEFAULT_SETTINGS) -> RoutingSettings:
    """``base`` with the known keys of ``values`` applied (unknown keys are ignored)."""
    known = {k: v for k, v in values.items() if k in _FIELDS}
    if "background_patterns" in known and known["background_patterns"] is not None:
        known["background_patterns"] = tuple(known["background_patterns"])
    if not known:
        return base
    merged = msgspec.structs.asdict(base) | known
    return msgspec.convert(merged, RoutingSettings)

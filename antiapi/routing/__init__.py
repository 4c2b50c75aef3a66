"""Pure routing decisions: which account serves a request, failover, cooldowns, affinity.

May import only the standard library, msgspec, :mod:`antiapi.errors` and
:mod:`antiapi.translate.ir`; no I/O, no clocks of its own (time is injected).
"""

from antiapi.routing.affinity import Affinity
from antiapi.routing.cooldown import Cooldowns, Cooling
from antiapi.routing.policy import RoutesExhausted, Verdict, classify, exhausted, order
from antiapi.routing.router import Plan, QuotaInfo, Router, Step
from antiapi.routing.settings import DEFAULT_SETTINGS, STRATEGIES, Chain, Entry, RoutingSettings, settings_from
from antiapi.routing.table import FLOW_PREFIX, Account, Candidate, Route, RouteTable, UnknownModel

__all__ = [
    "DEFAULT_SETTINGS",
    "FLOW_PREFIX",
    "STRATEGIES",
    "Account",
    "Affinity",
    "Candidate",
    "Chain",
    "Cooldowns",
    "Cooling",
    "Entry",
    "Plan",
    "QuotaInfo",
    "Route",
    "RouteTable",
    "Router",
    "RoutesExhausted",
    "RoutingSettings",
    "Step",
    "UnknownModel",
    "Verdict",
    "classify",
    "exhausted",
    "order",
    "settings_from",
]

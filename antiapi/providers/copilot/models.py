"""Copilot model catalogue and model-name mapping (pure).

Clients ask for Anthropic-style names (``claude-sonnet-4-5``, ``claude-opus-4-5-thinking``,
``claude-sonnet-4-5-20250929``); Copilot's ids are dotted (``claude-sonnet-4.5``). ``to_copilot``
maps a client name to a Copilot id; ``client_names`` lists every name a Copilot id is served under.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from antiapi.providers.base import Capabilities

#: Copilot ids served when the live model list cannot be read (the client names derive from them).
STATIC_IDS = ("claude-opus-4.5", "claude-sonnet-4.5", "gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini")

#: Anthropic's dated ids for Copilot's Claude models (clients such as Claude Code send these).
DATED = {
    "claude-sonnet-4.5": ("claude-sonnet-4-5-20250929",),
    "claude-opus-4.5": ("claude-opus-4-5-20251101",),
    "claude-haiku-4.5": ("claude-haiku-4-5-20251001",),
    "claude-opus-4.1": ("claude-opus-4-1-20250805",),
    "claude-sonnet-4": ("claude-sonnet-4-20250514",),
    "claude-opus-4": ("claude-opus-4-20250514",),
    "claude-3.7-sonnet": ("claude-3-7-sonnet-20250219",),
    "claude-3.5-sonnet": ("claude-3-5-sonnet-20241022",),
}

_DATE = re.compile(r"-(\d{8})$")
_DIGIT_HYPHEN = re.compile(r"(?<=\d)-(?=\d)")
_DIGIT_DOT = re.compile(r"(?<=\d)\.(?=\d)")
CHAT = "/chat/completions"
RESPONSES = "/responses"


@dataclass(frozen=True)
class ModelInfo:
    """One model of the account's catalogue (``GET {copilot}/models``)."""

    id: str
    endpoints: tuple[str, ...] = ()
    tools: bool | None = None
    vision: bool | None = None
    streaming: bool | None = None
    context_window: int | None = None
    max_output_tokens: int | None = None
    premium: bool | None = None
    multiplier: float | None = None
    kind: str = "chat"
    picker: bool | None = None
    policy: str | None = None
    vendor: str | None = None

    @property
    def responses_only(self) -> bool:
        return bool(self.endpoints) and CHAT not in self.endpoints and RESPONSES in self.endpoints

    @property
    def servable(self) -> bool:
        """Reachable through /chat/completions, or /responses via the bridge."""
        return not self.endpoints or CHAT in self.endpoints or RESPONSES in self.endpoints

    def capabilities(self) -> Capabilities:
        return Capabilities(
            streaming=self.streaming is not False,
            tools=self.tools is not False,
            images=self.vision is not False,
            thinking=True,
            count_tokens=False,
        )


def _bool(v: Any) -> bool | None:
    return v if isinstance(v, bool) else None


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def parse_model(m: Any) -> ModelInfo | None:
    if not isinstance(m, dict):
        return None
    mid = m.get("id")
    if not isinstance(mid, str) or not mid.strip():
        return None
    caps = m.get("capabilities") if isinstance(m.get("capabilities"), dict) else {}
    supports = caps.get("supports") if isinstance(caps.get("supports"), dict) else {}
    limits = caps.get("limits") if isinstance(caps.get("limits"), dict) else {}
    billing = m.get("billing") if isinstance(m.get("billing"), dict) else {}
    policy = m.get("policy") if isinstance(m.get("policy"), dict) else {}
    eps = m.get("supported_endpoints")
    vision = _bool(supports.get("vision"))
    if vision is None and isinstance(limits.get("vision"), dict):
        vision = True
    mult = billing.get("multiplier")
    return ModelInfo(
        id=mid.strip(),
        endpoints=tuple(e for e in eps if isinstance(e, str)) if isinstance(eps, list) else (),
        tools=_bool(supports.get("tool_calls")),
        vision=vision,
        streaming=_bool(supports.get("streaming")),
        context_window=_int(limits.get("max_context_window_tokens")),
        max_output_tokens=_int(limits.get("max_output_tokens")),
        premium=_bool(billing.get("is_premium")),
        multiplier=float(mult) if isinstance(mult, (int, float)) and not isinstance(mult, bool) else None,
        kind=str(caps.get("type") or "chat"),
        picker=_bool(m.get("model_picker_enabled")),
        policy=policy.get("state") if isinstance(policy.get("state"), str) else None,
        vendor=m.get("vendor") if isinstance(m.get("vendor"), str) else None,
    )


def parse_catalog(data: Any) -> list[ModelInfo]:
    """The chat models of a ``/models`` answer (``data`` or ``models``, list or map), in order.

    Embedding models, models the account has not enabled (``policy.state`` other than
    ``enabled``) and models hidden from the picker are left out.
    """
    raw: Any = None
    if isinstance(data, dict):
        raw = data.get("data", data.get("models"))
    elif isinstance(data, list):
        raw = data
    if isinstance(raw, dict):
        raw = [({"id": k, **v} if isinstance(v, dict) and "id" not in v else v) for k, v in raw.items()]
    if not isinstance(raw, list):
        return []
    out: dict[str, ModelInfo] = {}
    for m in raw:
        info = parse_model(m)
        if info is None or info.id in out:
            continue
        if info.kind != "chat" or info.picker is False:
            continue
        if info.policy not in (None, "enabled"):
            continue
        if not info.servable:
            continue
        out[info.id] = info
    return list(out.values())


# ---------------------------------------------------------------------- names


def is_claude(name: str) -> bool:
    return name.startswith("claude-")


def split_client_name(name: str) -> tuple[str, bool]:
    """``claude-opus-4-5-thinking-20251101`` -> (``claude-opus-4-5``, thinking)."""
    base = _DATE.sub("", name)
    thinking = False
    if base.endswith("-thinking"):
        base, thinking = base[: -len("-thinking")], True
    base = _DATE.sub("", base)
    return base, thinking


def to_copilot(name: str, known: set[str] | frozenset[str] | None = None) -> str:
    """The Copilot id for a client model name (unchanged when it already is one)."""
    if known and name in known:
        return name
    base, _ = split_client_name(name)
    if known and base in known:
        return base
    if is_claude(base):
        return _DIGIT_HYPHEN.sub(".", base)
    return base


def client_names(copilot_id: str) -> list[str]:
    """Every name ``copilot_id`` is served under: itself, then for Claude models the hyphenated,
    thinking and dated Anthropic names."""
    names = [copilot_id]
    if is_claude(copilot_id):
        hyphen = _DIGIT_DOT.sub("-", copilot_id)
        names.append(hyphen)
        names.append(hyphen + "-thinking")
        names.extend(DATED.get(copilot_id, ()))
    return list(dict.fromkeys(names))


def all_client_names(ids: list[str] | tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for i in ids:
        out.extend(client_names(i))
    return list(dict.fromkeys(out))

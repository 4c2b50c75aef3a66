"""Codex model catalogue: the ``/models`` answer, a static fallback, aliases and effort suffixes.

Pure: no I/O (the provider fetches ``GET {base}/models?client_version=...``).

Name resolution (``Catalogue.resolve``), first match wins:

1. a model the catalogue lists                              -> (name, no effort)
2. an older seed name (``gpt-5.3-max-high``, ``gpt-5``, ...)  -> (the default model, its effort)
3. ``<model>-<effort>`` where <model> is 1. or 2.            -> (that model, effort)
4. anything else                                            -> (name unchanged; the backend decides)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Codex reasoning efforts, weakest first (upstreams.md §1.6).
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max", "ultra")
#: efforts a user may set as antiapi's default (ANTI_API_CODEX_REASONING_EFFORT / options)
DEFAULT_EFFORTS = ("low", "medium", "high")
#: suffixes listed as aliases of each model in list_models()
ALIAS_EFFORTS = ("low", "medium", "high", "xhigh")
#: suffixes listed for the older seed names (any effort suffix resolves; these are listed)
SEED_ALIAS_EFFORTS = ("low", "high")

CLIENT_VERSION = "0.144.1"


@dataclass(frozen=True)
class ModelInfo:
    slug: str
    default_effort: str | None = "medium"
    efforts: tuple[str, ...] = ("low", "medium", "high", "xhigh")
    context_window: int | None = None
    visible: bool = True


def _span(lo: str, hi: str) -> tuple[str, ...]:
    return EFFORTS[EFFORTS.index(lo) : EFFORTS.index(hi) + 1]


#: Used when /models cannot be fetched (upstreams.md §1.11, snapshot 2026-08; names drift).
FALLBACK_MODELS: tuple[ModelInfo, ...] = (
    ModelInfo("gpt-5.6-sol", "low", _span("low", "ultra"), 272_000),
    ModelInfo("gpt-5.6-terra", "medium", _span("low", "ultra"), 272_000),
    ModelInfo("gpt-5.6-luna", "medium", _span("low", "max"), 272_000),
    ModelInfo("gpt-5.5", "medium", _span("low", "xhigh"), 272_000),
    ModelInfo("gpt-5.4", "medium", _span("low", "xhigh"), 272_000),
    ModelInfo("gpt-5.4-mini", "medium", _span("low", "xhigh"), 272_000),
    ModelInfo("gpt-5.3-codex-spark", "high", _span("low", "xhigh"), 128_000),
)

#: The model older names are served by, when the catalogue has it.
PREFERRED_DEFAULT = "gpt-5.5"

#: Names earlier antiapi releases listed (anti-api's seed list): accepted as aliases of the
#: account's default model. Value: the effort the name implies (None: the request's / default).
SEED_ALIASES: dict[str, str | None] = {
    "gpt-5.3-max-high": "high",
    "gpt-5.3-max": None,
    "gpt-5.3": None,
    "gpt-5.3-codex": None,
    "gpt-5.2-max-high": "high",
    "gpt-5.2-max": None,
    "gpt-5.2": None,
    "gpt-5.2-codex": None,
    "gpt-5.1": None,
    "gpt-5.1-codex": None,
    "gpt-5.1-codex-max": None,
    "gpt-5-codex": None,
    "gpt-5": None,
}


def parse_models(data: Any) -> list[ModelInfo]:
    """``{"models": [...]}`` from ``GET /models`` -> usable models (hidden / disabled dropped)."""
    items = data.get("models") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ValueError("the /models answer has no 'models' list")
    out: list[ModelInfo] = []
    seen: set[str] = set()
    for m in items:
        if not isinstance(m, dict):
            continue
        slug = m.get("slug")
        if not isinstance(slug, str) or not slug.strip() or slug in seen:
            continue
        if m.get("disabled") is True or m.get("model_picker_enabled") is False:
            continue
        efforts: list[str] = []
        for lvl in m.get("supported_reasoning_levels") or []:
            e = lvl.get("effort") if isinstance(lvl, dict) else lvl
            if isinstance(e, str) and e in EFFORTS and e not in efforts:
                efforts.append(e)
        default = m.get("default_reasoning_level")
        ctx = m.get("context_window")
        seen.add(slug)
        out.append(
            ModelInfo(
                slug=slug.strip(),
                default_effort=default if isinstance(default, str) else None,
                efforts=tuple(efforts) or ("low", "medium", "high"),
                context_window=ctx if isinstance(ctx, int) else None,
                visible=m.get("visibility", "list") != "hide",
            )
        )
    return out


@dataclass
class Catalogue:
    models: list[ModelInfo] = field(default_factory=lambda: list(FALLBACK_MODELS))
    source: str = "fallback"  # or "upstream"
    effort_aliases: bool = True

    def __post_init__(self) -> None:
        self._by_slug = {m.slug: m for m in self.models}

    def get(self, slug: str) -> ModelInfo | None:
        return self._by_slug.get(slug)

    @property
    def default_model(self) -> str:
        if PREFERRED_DEFAULT in self._by_slug:
            return PREFERRED_DEFAULT
        visible = [m for m in self.models if m.visible]
        return (visible or self.models or list(FALLBACK_MODELS))[0].slug

    def resolve(self, name: str) -> tuple[str, str | None]:
        """Client-facing name -> (upstream slug, effort implied by the name or None)."""
        if name in self._by_slug:
            return name, None
        if name in SEED_ALIASES:
            return self.default_model, SEED_ALIASES[name]
        base, sep, suffix = name.rpartition("-")
        if sep and suffix in EFFORTS:
            if base in self._by_slug:
                return base, suffix
            if base in SEED_ALIASES:
                return self.default_model, suffix
        return name, None

    def clamp_effort(self, slug: str, effort: str) -> str:
        """``effort`` if the model supports it, else the nearest level it supports."""
        info = self._by_slug.get(slug)
        if info is None or not info.efforts or effort in info.efforts or effort not in EFFORTS:
            return effort
        want = EFFORTS.index(effort)
        return min(info.efforts, key=lambda e: (abs(EFFORTS.index(e) - want), -EFFORTS.index(e)))

    def names(self) -> list[str]:
        """Every name this catalogue routes: visible models, their effort aliases, seed names."""
        out: list[str] = []
        for m in self.models:
            if not m.visible:
                continue
            out.append(m.slug)
            if self.effort_aliases:
                out.extend(f"{m.slug}-{e}" for e in ALIAS_EFFORTS if e in m.efforts)
        for seed, implied in SEED_ALIASES.items():
            if seed in self._by_slug:
                continue
            out.append(seed)
            if self.effort_aliases and implied is None:
                out.extend(f"{seed}-{e}" for e in SEED_ALIAS_EFFORTS)
        return list(dict.fromkeys(out))

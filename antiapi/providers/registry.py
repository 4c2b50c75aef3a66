"""Build provider objects from config: built-ins plus the ``antiapi.providers`` entry-point group."""

from __future__ import annotations

from importlib.metadata import entry_points

import httpx

from antiapi.errors import ConfigError
from antiapi.providers.base import Provider
from antiapi.providers.http import Timeouts

BUILTIN = {
    "openai": "antiapi.providers.openai:OpenAIProvider",
    "anthropic": "antiapi.providers.anthropic:AnthropicProvider",
    "gemini": "antiapi.providers.gemini:GeminiProvider",
}


def _load(spec: str):
    mod_name, _, attr = spec.partition(":")
    import importlib

    return getattr(importlib.import_module(mod_name), attr)


def provider_class(type_name: str):
    if type_name in BUILTIN:
        return _load(BUILTIN[type_name])
    for ep in entry_points(group="antiapi.providers"):
        if ep.name == type_name:
            try:
                return ep.load()
            except Exception as e:  # a broken plug-in is a config problem, not a crash
                raise ConfigError(f"provider plug-in '{type_name}' failed to load: {e}") from e
    known = sorted(set(BUILTIN) | {ep.name for ep in entry_points(group="antiapi.providers")})
    raise ConfigError(f"unknown provider type '{type_name}'; known types: {', '.join(known)}")


def build_providers(cfg, *, transport: httpx.AsyncBaseTransport | None = None) -> dict[str, Provider]:
    s = cfg.server
    timeouts = Timeouts(connect=s.connect_timeout, first_byte=s.first_byte_timeout, idle=s.idle_timeout)
    return {
        name: provider_class(pc.type)(pc, timeouts=timeouts, transport=transport)
        for name, pc in cfg.providers.items()
    }

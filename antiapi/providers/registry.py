"""Build provider objects from config: built-ins plus the ``antiapi.providers`` entry-point group."""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

from antiapi.providers.http import httpx

from antiapi.errors import ConfigError
from antiapi.providers.base import Provider
from antiapi.providers.http import Timeouts

BUILTIN = {
    "openai": "antiapi.providers.openai:OpenAIProvider",
    "anthropic": "antiapi.providers.anthropic:AnthropicProvider",
    "gemini": "antiapi.providers.gemini:GeminiProvider",
    "codex": "antiapi.providers.codex:CodexProvider",
    "copilot": "antiapi.providers.copilot:CopilotProvider",
}

log = logging.getLogger("antiapi.providers")

#: provider types whose accounts are signed in (``antiapi login <type>``) rather than configured
SIGNED_IN_TYPES = ("codex", "copilot")


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
    """One provider per configured entry, plus one per signed-in account, plus the API-key
    providers added from the dashboard (:mod:`antiapi.providers.stored`).

    A ``codex``/``copilot`` entry with ``account:`` pins that account. One without ``account`` is a
    template (endpoints, options) applied to every signed-in account of its type, each becoming a
    provider named ``<entry name>:<account label>``. Signed-in accounts of a type the config does
    not mention at all become ``<type>:<label>`` with default settings.

    Providers added from the dashboard (``<data_dir>/accounts/apikey/<name>.json``) come last, in
    the order they were added; a config entry of the same name wins (a warning says so). They
    serve their saved models through ``list_models()`` (``dynamic_models``), which the gateway
    routes at start.
    """
    import dataclasses

    from antiapi.accounts import CredentialStore

    s = cfg.server
    timeouts = Timeouts(connect=s.connect_timeout, first_byte=s.first_byte_timeout, idle=s.idle_timeout)
    kw = {"timeouts": timeouts, "transport": transport, "data_dir": cfg.data_dir, "env": dict(cfg.env_settings)}
    out: dict[str, Provider] = {}
    templates: dict[str, list] = {t: [] for t in SIGNED_IN_TYPES}
    pinned: dict[str, set[str]] = {t: set() for t in SIGNED_IN_TYPES}
    for name, pc in cfg.providers.items():
        if pc.type in SIGNED_IN_TYPES and pc.account is None:
            templates[pc.type].append(pc)
            continue
        if pc.type in SIGNED_IN_TYPES:
            pinned[pc.type].add(pc.account)
        out[name] = provider_class(pc.type)(pc, **kw)
    store = CredentialStore(cfg.data_dir)
    for ptype in SIGNED_IN_TYPES:
        labels = [label for label in store.labels(ptype) if label not in pinned[ptype]]
        if not labels:
            continue
        tmpl_list = templates[ptype] or [None]
        for tmpl in tmpl_list:
            for label in labels:
                if tmpl is None:
                    from antiapi.config.schema import DEFAULT_BASE_URLS, ProviderConfig

                    pc = ProviderConfig(name=f"{ptype}:{label}", type=ptype, base_url=DEFAULT_BASE_URLS[ptype], account=label)
                else:
                    pc = dataclasses.replace(tmpl, name=f"{tmpl.name}:{label}", account=label)
                out[pc.name] = provider_class(ptype)(pc, **kw)
    _add_stored(cfg, out, kw)
    return out


def _add_stored(cfg, out: dict[str, Provider], kw: dict) -> None:
    from antiapi.providers import stored

    store = stored.ApiKeyStore(cfg.data_dir)
    for entry in store.entries():
        if entry.name in out or entry.name in cfg.providers:
            log.warning(
                "providers: %s is in the config file and was also added from the dashboard (%s); the config "
                "file's entry is used. Delete that file (or remove the entry from the config file).",
                entry.name, store.path(entry.name),
            )
            continue
        try:
            out[entry.name] = stored.build_provider(entry, **kw)
        except Exception as e:  # one bad saved provider must not stop the gateway
            log.warning("provider %s (added from the dashboard, %s) could not be built: %s",
                        entry.name, store.path(entry.name), e)

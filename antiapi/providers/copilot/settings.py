"""Copilot settings from a ProviderConfig: upstream URLs, editor headers, timings, TLS.

Every upstream URL can be overridden with ``endpoints:`` in the config (GitHub Enterprise, proxies,
tests). Keys (full URLs unless said otherwise):

======================  ===================================================================
``github``              GitHub web base (default ``https://github.com``); the two device-flow
                        URLs below derive from it
``github_api``          GitHub REST base (default ``https://api.github.com``); ``user``,
                        ``token`` and ``quota`` derive from it
``device_code``         ``{github}/login/device/code``
``access_token``        ``{github}/login/oauth/access_token``
``user``                ``{github_api}/user``
``token``               ``{github_api}/copilot_internal/v2/token`` (the Copilot token exchange)
``quota``               ``{github_api}/copilot_internal/user`` (plan and quota snapshots)
``api``                 Copilot API base. When set (or when ``base_url`` is not the default) it is
                        always used; otherwise the base the token exchange names
                        (``endpoints.api``) is used, else ``https://api.githubcopilot.com``.
======================  ===================================================================

``options.domain`` (GHE.com data residency, e.g. ``octocorp.ghe.com``) sets ``github`` to
``https://<domain>``, ``github_api`` to ``https://api.<domain>`` and the default Copilot base to
``https://copilot-api.<domain>``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from antiapi import __version__
from antiapi.errors import ConfigError

log = logging.getLogger("antiapi.providers.copilot")

#: The GitHub Copilot editor-plugin OAuth app. It is the public client id embedded in the
#: open-source Copilot proxies (ericc-ch/copilot-api, caozhiyuan/copilot-api, CLIProxyAPI) and the
#: one whose GitHub tokens the Copilot token exchange accepts; a GitHub OAuth app of our own would
#: get tokens that ``copilot_internal/v2/token`` refuses.
DEFAULT_CLIENT_ID = "Iv1.b507a08c87ecfe98"
SCOPE = "read:user"

GITHUB = "https://github.com"
GITHUB_API = "https://api.github.com"
COPILOT_API = "https://api.githubcopilot.com"

#: Copilot refuses requests without a recognised editor (``missing Editor-Version header for IDE
#: auth``); these are the values the open-source Copilot clients send. Override with options.
EDITOR_VERSION = "vscode/1.104.3"
EDITOR_PLUGIN_VERSION = "copilot-chat/0.31.5"
INTEGRATION_ID = "vscode-chat"
GITHUB_API_VERSION = "2025-04-01"
USER_AGENT = f"antiapi/{__version__}"

INSECURE_ENV = "ANTI_API_COPILOT_INSECURE_TLS"

ENDPOINT_KEYS = ("github", "github_api", "device_code", "access_token", "user", "token", "quota", "api")

OPTION_DEFAULTS: dict[str, Any] = {
    "client_id": DEFAULT_CLIENT_ID,
    "domain": None,
    "editor_version": EDITOR_VERSION,
    "editor_plugin_version": EDITOR_PLUGIN_VERSION,
    "integration_id": INTEGRATION_ID,
    "github_api_version": GITHUB_API_VERSION,
    #: seconds between quota polls (copilot_internal/user)
    "quota_interval": 300.0,
    #: seconds a model list stays fresh
    "models_ttl": 300.0,
    #: seconds list_models waits for the live model list before using the static list
    "models_timeout": 3.0,
    #: seconds to stop sending to an account after a 402 whose reset time is unknown
    "quota_cooldown": 600.0,
}


@dataclass(frozen=True)
class Endpoints:
    github: str
    github_api: str
    device_code: str
    access_token: str
    user: str
    token: str
    quota: str
    #: forced Copilot API base (None: the token's endpoints.api, else ``default_api``)
    api: str | None
    default_api: str


@dataclass(frozen=True)
class CopilotSettings:
    name: str
    account: str | None
    endpoints: Endpoints
    client_id: str
    domain: str | None
    editor_version: str
    editor_plugin_version: str
    integration_id: str
    github_api_version: str
    quota_interval: float
    models_ttl: float
    models_timeout: float
    quota_cooldown: float
    verify_tls: bool
    extra_headers: dict[str, str] = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ headers

    def github_headers(self, github_token: str | None = None) -> dict[str, str]:
        """Headers for GitHub REST calls (user, token exchange, quota)."""
        h = {
            "accept": "application/json",
            "user-agent": USER_AGENT,
            "editor-version": self.editor_version,
            "editor-plugin-version": self.editor_plugin_version,
            "x-github-api-version": self.github_api_version,
        }
        if github_token:
            h["authorization"] = f"token {github_token}"
        return h

    def copilot_headers(self, copilot_token: str) -> dict[str, str]:
        """Headers every Copilot API call needs (chat, responses, models)."""
        return {
            **self.extra_headers,
            "authorization": f"Bearer {copilot_token}",
            "user-agent": USER_AGENT,
            "editor-version": self.editor_version,
            "editor-plugin-version": self.editor_plugin_version,
            "copilot-integration-id": self.integration_id,
            "x-github-api-version": self.github_api_version,
        }


def _strip(url: str) -> str:
    return url.rstrip("/")


def resolve_endpoints(overrides: Mapping[str, str], *, domain: str | None, base_url: str | None) -> Endpoints:
    unknown = sorted(set(overrides) - set(ENDPOINT_KEYS))
    if unknown:
        raise ConfigError(
            f"copilot endpoints: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(ENDPOINT_KEYS)}"
        )
    if domain:
        github, github_api, default_api = f"https://{domain}", f"https://api.{domain}", f"https://copilot-api.{domain}"
    else:
        github, github_api, default_api = GITHUB, GITHUB_API, COPILOT_API
    github = _strip(overrides.get("github") or github)
    github_api = _strip(overrides.get("github_api") or github_api)
    forced = overrides.get("api") or None
    if forced is None and base_url and _strip(base_url) != COPILOT_API:
        forced = base_url
    return Endpoints(
        github=github,
        github_api=github_api,
        device_code=overrides.get("device_code") or f"{github}/login/device/code",
        access_token=overrides.get("access_token") or f"{github}/login/oauth/access_token",
        user=overrides.get("user") or f"{github_api}/user",
        token=overrides.get("token") or f"{github_api}/copilot_internal/v2/token",
        quota=overrides.get("quota") or f"{github_api}/copilot_internal/user",
        api=_strip(forced) if forced else None,
        default_api=default_api,
    )


def _num(options: Mapping[str, Any], key: str) -> float:
    v = options.get(key, OPTION_DEFAULTS[key])
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ConfigError(f"copilot options.{key}: expected a number of seconds, got {v!r}") from None
    if f < 0:
        raise ConfigError(f"copilot options.{key}: must not be negative")
    return f


def insecure_tls(env: Mapping[str, str]) -> bool:
    return (env.get(INSECURE_ENV) or "").strip().lower() in ("1", "true", "yes", "on")


def from_config(pc: Any, env: Mapping[str, str] | None = None, *, warn: bool = True) -> CopilotSettings:
    """Settings for one copilot ProviderConfig. Raises ConfigError on unknown keys or bad values."""
    env = env or {}
    options = dict(getattr(pc, "options", None) or {})
    unknown = sorted(set(options) - set(OPTION_DEFAULTS))
    if unknown:
        raise ConfigError(
            f"{pc.name}: unknown copilot option(s) {', '.join(unknown)}; known options: {', '.join(OPTION_DEFAULTS)}"
        )
    domain = options.get("domain") or None
    endpoints = resolve_endpoints(dict(getattr(pc, "endpoints", None) or {}), domain=domain, base_url=pc.base_url)
    verify = bool(getattr(pc, "verify_tls", True))
    if insecure_tls(env):
        verify = False
    if not verify and warn:
        log.warning(
            "%s: TLS CERTIFICATE VERIFICATION IS OFF for GitHub/Copilot (%s or verify_tls: false). "
            "Anyone on the network path can read your GitHub token. Use this only behind a trusted "
            "intercepting proxy.",
            pc.name,
            INSECURE_ENV,
        )
    return CopilotSettings(
        name=pc.name,
        account=getattr(pc, "account", None),
        endpoints=endpoints,
        client_id=str(options.get("client_id") or DEFAULT_CLIENT_ID),
        domain=domain,
        editor_version=str(options.get("editor_version") or EDITOR_VERSION),
        editor_plugin_version=str(options.get("editor_plugin_version") or EDITOR_PLUGIN_VERSION),
        integration_id=str(options.get("integration_id") or INTEGRATION_ID),
        github_api_version=str(options.get("github_api_version") or GITHUB_API_VERSION),
        quota_interval=_num(options, "quota_interval"),
        models_ttl=_num(options, "models_ttl"),
        models_timeout=_num(options, "models_timeout"),
        quota_cooldown=_num(options, "quota_cooldown"),
        verify_tls=verify,
        extra_headers={k.lower(): v for k, v in (getattr(pc, "headers", None) or {}).items()},
    )

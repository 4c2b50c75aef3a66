"""antiapi's configuration: the file schema, the resolved Config, and the loader.

``schema`` is pure (stdlib + msgspec); the loader names (``load_config``, ``parse_config``,
``setup_hint``, ``ENV_DATA_DIR``, ``TEMPLATE``) are imported lazily so that pure layers can import
``antiapi.config.schema`` without pulling in yaml or platformdirs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from antiapi.config.schema import (
    DEFAULT_BASE_URLS,
    LITELLM_PREFIXES,
    PROVIDER_TYPES,
    Capabilities,
    Config,
    ModelRoute,
    ProviderConfig,
    ServerSettings,
    mask_secret,
)

if TYPE_CHECKING:
    from antiapi.config.load import ENV_DATA_DIR, TEMPLATE, load_config, parse_config, setup_hint

__all__ = [
    "DEFAULT_BASE_URLS",
    "ENV_DATA_DIR",
    "LITELLM_PREFIXES",
    "PROVIDER_TYPES",
    "TEMPLATE",
    "Capabilities",
    "Config",
    "ModelRoute",
    "ProviderConfig",
    "ServerSettings",
    "load_config",
    "mask_secret",
    "parse_config",
    "setup_hint",
]

_LAZY = frozenset({"ENV_DATA_DIR", "TEMPLATE", "load_config", "parse_config", "setup_hint"})


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from antiapi.config import load

        return getattr(load, name)
    raise AttributeError(f"module 'antiapi.config' has no attribute {name!r}")

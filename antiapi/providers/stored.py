"""API-key providers added from the dashboard / admin API, kept in the data directory.

One file per provider, ``<data_dir>/accounts/apikey/<name>.json`` (directory 0700, file 0600,
written atomically), holding ``name``, ``type``, ``base_url`` (None: the type's official
endpoint), ``api_key``, ``models``, ``listed`` (the models came from the upstream's model list)
and ``created_at``.

* :func:`new_entry` checks what a user typed (type, name, key, base URL, models) and raises
  ``ValueError`` with a message that says what to fix (never with the key in it).
* :class:`ApiKeyStore` saves, loads and removes the files.
* :func:`fetch_models` asks the upstream for its model list (which also checks the key) and turns
  every failure into a ``ValueError`` saying what to do.
* :func:`build_provider` builds the running provider: the type's ordinary provider class, marked
  ``stored`` and ``dynamic_models`` so the gateway routes its models (``list_models()``) the same
  way at start (``create_app``) and when it is added live (the admin backend).

No Litestar here: the admin backend (``antiapi.server.admin_backend``) and ``build_providers``
(``antiapi.providers.registry``) both use it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from antiapi.paths import save_text_atomic

__all__ = [
    "API_KEY_TYPES",
    "MODEL_LIST_TIMEOUT",
    "NAME_RE",
    "ApiKeyStore",
    "StoredApiKey",
    "build_provider",
    "fetch_models",
    "new_entry",
    "shown_url",
]

log = logging.getLogger("antiapi.providers")

#: provider types whose accounts can be added with an API key
API_KEY_TYPES = ("openai", "anthropic", "gemini")
#: what a name may look like (no ':' — signed-in accounts use ``<type>:<label>``)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]*$")
_MAX_NAME = 64
_MAX_MODELS = 2000
_MAX_MODEL_ID = 256
#: seconds the model list request may take when a provider is added
MODEL_LIST_TIMEOUT = 15.0
#: seconds the model list may take at start before the saved list is served instead
REFRESH_TIMEOUT = 3.0
_OFFICIAL_OPENAI_HOSTS = ("api.openai.com",)


@dataclasses.dataclass(frozen=True, repr=False)
class StoredApiKey:
    """One provider added from the dashboard (``repr`` never shows the key)."""

    name: str
    type: str
    api_key: str | None = None
    #: None: the type's official endpoint
    base_url: str | None = None
    models: tuple[str, ...] = ()
    #: the models came from the upstream's model list (asked again at each start)
    listed: bool = False
    created_at: float = 0.0

    def __repr__(self) -> str:
        return (f"StoredApiKey(name={self.name!r}, type={self.type!r}, api_key={'***' if self.api_key else None!r}, "
                f"base_url={self.base_url!r}, models={len(self.models)}, listed={self.listed!r})")

    @property
    def url(self) -> str:
        """The base URL requests go to (the official one when none was given)."""
        from antiapi.config.schema import DEFAULT_BASE_URLS

        return self.base_url or DEFAULT_BASE_URLS[self.type]

    def provider_config(self) -> Any:
        """The :class:`~antiapi.config.schema.ProviderConfig` of this provider (like a config-file
        entry without ``api:``; its ``models`` are the ids to serve)."""
        from antiapi.config.schema import ProviderConfig

        return ProviderConfig(name=self.name, type=self.type, base_url=self.url, api_key=self.api_key or None,
                              models=tuple(self.models))

    def to_json(self) -> str:
        return json.dumps({
            "name": self.name, "type": self.type, "base_url": self.base_url, "api_key": self.api_key,
            "models": list(self.models), "listed": self.listed, "created_at": self.created_at,
        }, indent=2)

    @classmethod
    def from_dict(cls, data: Any) -> StoredApiKey:
        """Read a saved file's content back (checked like a new entry; ``ValueError`` if wrong)."""
        if not isinstance(data, dict):
            raise ValueError("the file does not hold a JSON object")
        models = data.get("models") or []
        if not isinstance(models, list):
            raise ValueError("models: expected a list of model ids")
        entry = new_entry(type=data.get("type"), name=data.get("name"), api_key=data.get("api_key"),
                          base_url=data.get("base_url"), models=models, now=_number(data.get("created_at")))
        if not entry.models:
            raise ValueError("models: the list is empty")
        return dataclasses.replace(entry, listed=bool(data.get("listed")))


def _number(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0.0


def shown_url(url: str) -> str:
    """``url`` without any ``user:password@`` part (for messages and logs)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _check_base_url(base_url: str) -> str:
    url = base_url.strip().rstrip("/")
    shown = shown_url(url)
    if any(c.isspace() for c in url) or any(ord(c) < 32 for c in url):
        raise ValueError(f"base_url: {shown!r} contains spaces or control characters; give a URL like http://127.0.0.1:11434/v1")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        raise ValueError(f"base_url: {shown!r} is not a valid URL; give one like https://openrouter.ai/api/v1") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"base_url: {shown!r} must be an http:// or https:// URL with a host, "
                         "e.g. http://127.0.0.1:11434/v1")
    if parts.query or parts.fragment:
        raise ValueError(f"base_url: {shown!r} must not have a query (?…) or fragment (#…); "
                         "give the URL the API paths are appended to")
    return url


def _is_official(ptype: str, url: str | None) -> bool:
    if url is None:
        return True
    host = (urlsplit(url).hostname or "").lower()
    if ptype == "openai":
        return host in _OFFICIAL_OPENAI_HOSTS
    return True  # anthropic / gemini always need a key


def new_entry(
    *,
    type: Any,
    name: Any,
    api_key: Any = None,
    base_url: Any = None,
    models: Any = (),
    now: float | None = None,
) -> StoredApiKey:
    """Check a new API-key provider and return it (``ValueError`` naming the field to fix).

    ``type``: openai (the official API, or any OpenAI-compatible server with ``base_url``),
    anthropic or gemini. ``name``: letters, digits and ``. _ @ + -`` (no ``:``). ``api_key``:
    required, except for an openai-type server at its own ``base_url`` (a local Ollama needs
    none). ``models``: the ids to serve (empty: ask the upstream, see :func:`fetch_models`)."""
    ptype = type.strip().lower() if isinstance(type, str) else ""
    if ptype not in API_KEY_TYPES:
        from antiapi.providers.registry import SIGNED_IN_TYPES

        got = f"{type!r}" if isinstance(type, str) and type.strip() else "nothing"
        hint = (f"; {ptype} accounts are signed in instead (POST /admin/accounts/signin)"
                if ptype in SIGNED_IN_TYPES else "")
        raise ValueError(f"type: expected one of {', '.join(API_KEY_TYPES)} (openai also covers any OpenAI-compatible "
                         f"server such as Ollama, vLLM or OpenRouter, with base_url), got {got}{hint}")
    nm = name.strip() if isinstance(name, str) else ""
    if not nm:
        raise ValueError("name: required; the name routes and the dashboard use for this provider, e.g. \"ollama\"")
    if len(nm) > _MAX_NAME:
        raise ValueError(f"name: at most {_MAX_NAME} characters")
    if not NAME_RE.match(nm):
        extra = " (':' is kept for signed-in accounts such as codex:me@example.com)" if ":" in nm else ""
        raise ValueError(f"name: {nm!r} may only contain letters, digits and . _ @ + -, and must start with a letter "
                         f"or digit{extra}")
    from antiapi.config.schema import PROVIDER_TYPES

    if nm.lower() in PROVIDER_TYPES and nm.lower() != ptype:
        raise ValueError(f"name: {nm!r} is a provider type (routing entries use it for every account of that type); "
                         "choose another name")
    url: str | None = None
    if base_url is not None and not isinstance(base_url, str):
        raise ValueError("base_url: expected a URL string")
    if isinstance(base_url, str) and base_url.strip():
        url = _check_base_url(base_url)
    key = api_key.strip() if isinstance(api_key, str) else ""
    if api_key is not None and not isinstance(api_key, str):
        raise ValueError("api_key: expected a string")
    if key and (any(c.isspace() for c in key) or any(ord(c) < 32 or ord(c) == 127 for c in key)):
        raise ValueError("api_key: the key contains spaces or line breaks; paste the key alone")
    if not key and _is_official(ptype, url):
        if ptype == "openai":
            raise ValueError("api_key: required for the official OpenAI API; a server that needs no key "
                             "(a local Ollama, vLLM…) is added with its base_url")
        raise ValueError(f"api_key: required for {ptype}")
    ids: list[str] = []
    if isinstance(models, str) or not isinstance(models, (list, tuple)):
        raise ValueError("models: expected a list of model ids")
    for i, m in enumerate(models, 1):
        if not isinstance(m, str):
            raise ValueError(f"models: entry {i} is not a string")
        mid = m.strip()
        if not mid:
            continue
        if len(mid) > _MAX_MODEL_ID or any(c.isspace() or ord(c) < 32 for c in mid):
            raise ValueError(f"models: {mid[:60]!r} is not a model id (no spaces, at most {_MAX_MODEL_ID} characters)")
        if mid not in ids:
            ids.append(mid)
    if len(ids) > _MAX_MODELS:
        raise ValueError(f"models: at most {_MAX_MODELS} ids")
    return StoredApiKey(name=nm, type=ptype, api_key=key or None, base_url=url, models=tuple(ids),
                        created_at=time.time() if now is None else now)


# ---------------------------------------------------------------------------------------- store


class ApiKeyStore:
    """``<data_dir>/accounts/apikey/<name>.json``, one per provider (0600, written atomically)."""

    def __init__(self, data_dir: str | Path) -> None:
        self.root = Path(data_dir) / "accounts" / "apikey"

    def path(self, name: str) -> Path:
        if not NAME_RE.match(name):  # names are checked before; never build a path from anything else
            raise ValueError(f"not a provider name: {name!r}")
        return self.root / f"{name}.json"

    def save(self, entry: StoredApiKey) -> Path:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.root.stat().st_mode & 0o077:  # keys inside: owner only, whatever the umask
            os.chmod(self.root, 0o700)
        path = self.path(entry.name)
        save_text_atomic(path, entry.to_json() + "\n", mode=0o600)
        return path

    def load(self, name: str) -> StoredApiKey | None:
        try:
            text = self.path(name).read_text(encoding="utf-8")
        except (FileNotFoundError, ValueError):
            return None
        return StoredApiKey.from_dict(json.loads(text))

    def names(self) -> list[str]:
        """The names of the saved providers (file names; unreadable files included)."""
        if not self.root.is_dir():
            return []
        return sorted(p.stem for p in self.root.glob("*.json"))

    def entries(self) -> list[StoredApiKey]:
        """Every saved provider, oldest first. A file that cannot be used is skipped with a
        warning that names it (it never stops the gateway)."""
        if not self.root.is_dir():
            return []
        out = []
        for path in sorted(self.root.glob("*.json")):
            try:
                entry = StoredApiKey.from_dict(json.loads(path.read_text(encoding="utf-8")))
                if entry.name != path.stem:
                    raise ValueError(f"it names the provider {entry.name!r}, not {path.stem!r}")
            except (OSError, ValueError) as e:  # json.JSONDecodeError is a ValueError
                log.warning("%s: skipped, this API-key provider cannot be used: %s", path, e)
                continue
            out.append(entry)
        out.sort(key=lambda e: (e.created_at, e.name))
        return out

    def remove(self, name: str) -> bool:
        try:
            self.path(name).unlink()
            return True
        except (FileNotFoundError, ValueError):
            return False


# ---------------------------------------------------------------------------------------- providers


class _StoredMixin:
    """Mixed into a provider class: serves the saved model ids (``cfg.models``) through
    ``list_models()``, the way the gateway routes signed-in accounts' models."""

    #: added from the dashboard (the admin backend lets these be removed)
    stored = True
    dynamic_models = True
    #: the models came from the upstream's list: ask it again at start, else serve the saved list
    listed_models = False

    async def upstream_models(self) -> list[str]:
        return await super().list_models()  # type: ignore[misc]

    async def list_models(self) -> list[str]:
        saved = list(self.cfg.models)  # type: ignore[attr-defined]
        if not self.listed_models:
            return saved
        try:
            fresh = await asyncio.wait_for(self.upstream_models(), REFRESH_TIMEOUT)
        except Exception as e:  # the upstream is down or slow: the saved list still routes
            log.info("provider %s: model list not refreshed (%s); serving the %d saved models",
                     self.name, _short(e), len(saved))  # type: ignore[attr-defined]
            return saved
        fresh = list(dict.fromkeys(m for m in fresh if isinstance(m, str) and m))
        return fresh or saved


_CLASSES: dict[type, type] = {}


def _stored_class(base: type) -> type:
    cls = _CLASSES.get(base)
    if cls is None:
        cls = _CLASSES[base] = type(f"Stored{base.__name__}", (_StoredMixin, base), {"__module__": __name__})
    return cls


def build_provider(entry: StoredApiKey, **kw: Any) -> Any:
    """The running provider for ``entry`` (``kw`` as for any provider: timeouts, transport,
    data_dir, env). It has ``stored = True`` and serves ``entry.models``."""
    from antiapi.providers.registry import provider_class

    p = _stored_class(provider_class(entry.type))(entry.provider_config(), **kw)
    p.listed_models = entry.listed
    return p


def _short(e: BaseException) -> str:
    text = getattr(e, "message", None) or str(e) or type(e).__name__
    return text.splitlines()[0][:200]


def _redact(text: str, key: str | None) -> str:
    return text.replace(key, "***") if key else text


async def fetch_models(entry: StoredApiKey, *, timeout: float = MODEL_LIST_TIMEOUT, **kw: Any) -> list[str]:
    """Ask the upstream for its model ids (this also checks the key). Every failure is a
    ``ValueError`` that says what to do; the key never appears in it."""
    from antiapi.errors import ErrorKind, ProviderError, UpstreamTimeout, UpstreamUnavailable
    from antiapi.providers.registry import provider_class

    where = shown_url(entry.url)
    skip = "or list the model ids in models to skip this check"
    p = provider_class(entry.type)(dataclasses.replace(entry.provider_config(), models=()), **kw)
    try:
        names = await asyncio.wait_for(p.list_models(), timeout)
    except (asyncio.TimeoutError, UpstreamTimeout):
        raise ValueError(f"could not reach {where}: no answer to the model list request within {timeout:g} s; "
                         f"check base_url (is the server running?), {skip}") from None
    except UpstreamUnavailable as e:
        reason = _redact(_short(e).removeprefix(f"{entry.name}: "), entry.api_key)
        raise ValueError(f"could not reach {where} ({reason}); check base_url (is the server running?), {skip}") from None
    except ProviderError as e:
        if e.kind in (ErrorKind.AUTHENTICATION, ErrorKind.PERMISSION):
            if entry.api_key:
                raise ValueError(f"the upstream refused the key (HTTP {e.status} from {where}); check api_key"
                                 + ("" if entry.base_url is None else " and base_url")) from None
            raise ValueError(f"the upstream refused the request without a key (HTTP {e.status} from {where}); "
                             "give api_key") from None
        reason = _redact(_short(e).removeprefix(f"{entry.name}: "), entry.api_key)
        raise ValueError(f"{where} answered the model list request with HTTP {e.status} ({reason}); "
                         f"check base_url, {skip}") from None
    except Exception as e:  # not JSON, not a model list
        log.info("provider %s: model list unreadable: %s", entry.name, type(e).__name__)
        raise ValueError(f"{where} did not answer the model list request with a model list ({type(e).__name__}); "
                         f"check base_url (for openai it usually ends in /v1), {skip}") from None
    finally:
        try:
            await p.aclose()
        except Exception:
            log.exception("closing provider %s failed", entry.name)
    ids = list(dict.fromkeys(m.strip() for m in names if isinstance(m, str) and m.strip()))
    if not ids:
        raise ValueError(f"{where} lists no models; give the model ids to serve in models")
    return ids[:_MAX_MODELS]

"""The Codex provider: ChatGPT sign-in (``antiapi login codex``) and the Codex Responses backend.

See docs/providers/codex.md. Modules: ``provider`` (CodexProvider), ``oauth`` (PKCE, URLs, JWT,
token endpoint), ``tokens`` (per-account state, single-flight refresh), ``callback`` (loopback
listener), ``login`` (sign-in flows and the CLI), ``quota`` (usage limits), ``models``.
"""

from antiapi.providers.codex.provider import CodexProvider

__all__ = ["CodexProvider"]

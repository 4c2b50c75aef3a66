"""Remote-access security: client API keys, the auth middleware and the exposure rules.

May import: stdlib, antiapi.errors, antiapi.translate (render_error), antiapi.store (CLI only).
Nothing here runs at import.
"""

from antiapi.security.auth import client_auth_middleware, is_exempt, presented_keys
from antiapi.security.exposure import check_exposure, is_loopback, needs_keys
from antiapi.security.keys import ClientKey, KeyProblem, KeyStore, KeyVerifier, generate_key, hash_key

__all__ = [
    "ClientKey",
    "KeyProblem",
    "KeyStore",
    "KeyVerifier",
    "check_exposure",
    "client_auth_middleware",
    "generate_key",
    "hash_key",
    "is_exempt",
    "is_loopback",
    "needs_keys",
    "presented_keys",
]

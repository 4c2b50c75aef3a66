"""ChatGPT (Codex) sign-in: PKCE, state, URLs, JWT claims and the token endpoint calls.

Protocol facts: /work/shared/docs/upstreams.md §1.1-1.3. The pure helpers (``new_pkce``,
``authorize_url``, ``jwt_claims``, ``TokenSet.from_response``, ``parse_callback``) do no I/O; the
``exchange_code`` / ``refresh`` / device calls take an ``httpx.AsyncClient``.

Nothing here logs or puts a token into an exception message.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from antiapi.providers.http import httpx

from antiapi.errors import GatewayError, UpstreamUnavailable

#: The public OAuth client id of OpenAI's Codex CLI (a public client: PKCE, no secret).
CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
AUTH_BASE = "https://auth.openai.com"
BACKEND_BASE = "https://chatgpt.com/backend-api/codex"
SCOPE = "openid profile email offline_access"
AUTH_CLAIM = "https://api.openai.com/auth"
#: Loopback ports on the client's registered redirect allow-list, in the order tried.
CALLBACK_PORTS = (1455, 1457)
CALLBACK_PATH = "/auth/callback"

#: refresh failure codes that mean "sign in again" (never retried)
PERMANENT_REFRESH_CODES = frozenset({"refresh_token_expired", "refresh_token_reused", "refresh_token_invalidated"})


# --------------------------------------------------------------------------- endpoints


@dataclass(frozen=True)
class Endpoints:
    """Every upstream URL of the Codex provider. Keys of ``ProviderConfig.endpoints``:
    ``auth_base``, ``authorize_url``, ``token_url``, ``device_usercode_url``,
    ``device_token_url``, ``device_verification_url``, ``device_redirect_uri``, ``base_url``,
    ``usage_url``."""

    auth_base: str = AUTH_BASE
    authorize_url: str = AUTH_BASE + "/oauth/authorize"
    token_url: str = AUTH_BASE + "/oauth/token"
    device_usercode_url: str = AUTH_BASE + "/api/accounts/deviceauth/usercode"
    device_token_url: str = AUTH_BASE + "/api/accounts/deviceauth/token"
    device_verification_url: str = AUTH_BASE + "/codex/device"
    device_redirect_uri: str = AUTH_BASE + "/deviceauth/callback"
    base_url: str = BACKEND_BASE
    usage_url: str = "https://chatgpt.com/backend-api/wham/usage"

    KEYS = (
        "auth_base", "authorize_url", "token_url", "device_usercode_url", "device_token_url",
        "device_verification_url", "device_redirect_uri", "base_url", "usage_url",
    )

    @classmethod
    def resolve(cls, overrides: dict[str, str] | None = None, base_url: str | None = None) -> "Endpoints":
        """Defaults, then ``base_url`` (the provider entry's), then ``overrides`` (``endpoints:``).
        URLs derived from ``auth_base`` / ``base_url`` follow them unless given themselves."""
        o = {k: v.rstrip("/") for k, v in (overrides or {}).items() if isinstance(v, str) and v}
        unknown = sorted(set(o) - set(cls.KEYS))
        if unknown:
            from antiapi.errors import ConfigError

            raise ConfigError(
                f"unknown codex endpoint key(s) {', '.join(unknown)}; known keys: {', '.join(cls.KEYS)}"
            )
        auth = o.get("auth_base", AUTH_BASE)
        base = o.get("base_url") or (base_url.rstrip("/") if base_url else BACKEND_BASE)
        if base.endswith("/codex"):
            usage = base[: -len("/codex")] + "/wham/usage"
        else:
            usage = base + "/wham/usage"
        return cls(
            auth_base=auth,
            authorize_url=o.get("authorize_url", auth + "/oauth/authorize"),
            token_url=o.get("token_url", auth + "/oauth/token"),
            device_usercode_url=o.get("device_usercode_url", auth + "/api/accounts/deviceauth/usercode"),
            device_token_url=o.get("device_token_url", auth + "/api/accounts/deviceauth/token"),
            device_verification_url=o.get("device_verification_url", auth + "/codex/device"),
            device_redirect_uri=o.get("device_redirect_uri", auth + "/deviceauth/callback"),
            base_url=base,
            usage_url=o.get("usage_url", usage),
        )


# --------------------------------------------------------------------------- PKCE / state / URL


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str
    method: str = "S256"

    def __repr__(self) -> str:
        return "Pkce(verifier=…, challenge=…)"


def pkce_challenge(verifier: str) -> str:
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def new_pkce() -> Pkce:
    """96 random bytes -> a 128-character base64url verifier; S256 challenge."""
    verifier = b64url(secrets.token_bytes(96))
    return Pkce(verifier, pkce_challenge(verifier))


def new_state() -> str:
    return b64url(secrets.token_bytes(32))


def redirect_uri_for(port: int, path: str = CALLBACK_PATH) -> str:
    return f"http://localhost:{port}{path}"


def authorize_url(endpoints: Endpoints, *, redirect_uri: str, pkce: Pkce, state: str) -> str:
    q = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": redirect_uri,
        "scope": SCOPE,
        "code_challenge": pkce.challenge,
        "code_challenge_method": pkce.method,
        "id_token_add_organizations": "true",
        "codex_cli_simplified_flow": "true",
        "state": state,
    }
    sep = "&" if "?" in endpoints.authorize_url else "?"
    return endpoints.authorize_url + sep + urlencode(q)


@dataclass(frozen=True)
class Callback:
    """What came back on the redirect URI."""

    code: str | None
    state: str | None
    error: str | None = None
    error_description: str | None = None


def parse_callback(text: str) -> Callback:
    """A redirect URL as pasted from the browser's address bar (or just its query string)."""
    text = text.strip()
    if not text:
        return Callback(None, None, "empty", "nothing was pasted")
    if "://" in text or text.startswith("/"):
        query = urlsplit(text).query
    else:
        query = text.lstrip("?")
    q = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items() if v}
    return Callback(q.get("code") or None, q.get("state"), q.get("error") or None, q.get("error_description"))


# --------------------------------------------------------------------------- JWT / tokens


def jwt_claims(token: str | None) -> dict[str, Any]:
    """The payload of a JWT, without checking its signature ({} when it is not a JWT)."""
    if not token or token.count(".") < 2:
        return {}
    payload = token.split(".")[1]
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _num(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return None


@dataclass
class TokenSet:
    """One account's tokens and what the id_token says about it."""

    access_token: str
    refresh_token: str
    id_token: str = ""
    email: str | None = None
    account_id: str | None = None
    plan: str | None = None
    expires_at: float | None = None  # epoch seconds (access token)
    last_refresh: float = field(default_factory=time.time)

    def __repr__(self) -> str:
        return f"TokenSet(email={self.email!r}, account_id={self.account_id!r}, plan={self.plan!r}, expires_at={self.expires_at!r})"

    @property
    def label(self) -> str:
        return self.email or self.account_id or "codex-account"

    @classmethod
    def from_response(cls, data: dict[str, Any], previous: "TokenSet | None" = None, now: float | None = None) -> "TokenSet":
        """A token endpoint answer (authorization_code or refresh_token grant). A refresh answer
        may leave out ``id_token`` / ``refresh_token``: the previous ones are kept then."""
        now = time.time() if now is None else now
        access = data.get("access_token")
        if not isinstance(access, str) or not access:
            raise ValueError("the token endpoint sent no access_token")
        refresh = data.get("refresh_token") if isinstance(data.get("refresh_token"), str) else None
        id_token = data.get("id_token") if isinstance(data.get("id_token"), str) else None
        if previous is not None:
            refresh = refresh or previous.refresh_token
            id_token = id_token or previous.id_token
        if not refresh:
            raise ValueError("the token endpoint sent no refresh_token")
        ts = cls(access_token=access, refresh_token=refresh, id_token=id_token or "", last_refresh=now)
        ts.fill_claims()
        if previous is not None:
            ts.email = ts.email or previous.email
            ts.account_id = ts.account_id or previous.account_id
            ts.plan = ts.plan or previous.plan
        exp = _num(jwt_claims(access).get("exp"))
        if exp is None:
            ein = _num(data.get("expires_in"))
            exp = now + ein if ein is not None else None
        ts.expires_at = exp
        return ts

    def fill_claims(self) -> None:
        claims = jwt_claims(self.id_token)
        auth = claims.get(AUTH_CLAIM) if isinstance(claims.get(AUTH_CLAIM), dict) else {}
        email = claims.get("email")
        self.email = email if isinstance(email, str) and email else self.email
        acc = auth.get("chatgpt_account_id")
        if not acc:
            # fall back to the access token's claim
            a2 = jwt_claims(self.access_token).get(AUTH_CLAIM)
            acc = a2.get("chatgpt_account_id") if isinstance(a2, dict) else None
        self.account_id = acc if isinstance(acc, str) and acc else self.account_id
        plan = auth.get("chatgpt_plan_type")
        self.plan = plan if isinstance(plan, str) and plan else self.plan

    def to_record(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "id_token": self.id_token,
            "email": self.email,
            "account_id": self.account_id,
            "plan": self.plan,
            "expires_at": self.expires_at,
            "last_refresh": self.last_refresh,
        }

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> "TokenSet":
        access, refresh = rec.get("access_token"), rec.get("refresh_token")
        if not isinstance(access, str) or not isinstance(refresh, str) or not access or not refresh:
            raise ValueError("the credentials file holds no access_token/refresh_token")
        ts = cls(
            access_token=access,
            refresh_token=refresh,
            id_token=rec.get("id_token") or "",
            email=rec.get("email"),
            account_id=rec.get("account_id"),
            plan=rec.get("plan"),
            expires_at=_num(rec.get("expires_at")),
            last_refresh=_num(rec.get("last_refresh")) or 0.0,
        )
        if ts.expires_at is None:
            ts.expires_at = _num(jwt_claims(access).get("exp"))
        if not ts.account_id or not ts.email:
            ts.fill_claims()
        return ts


# --------------------------------------------------------------------------- token endpoint


class SignInError(GatewayError):
    """Sign-in or refresh refused by the auth server (message is safe to show)."""

    def __init__(self, message: str, *, code: str | None = None, permanent: bool = True, status: int | None = None) -> None:
        super().__init__(message, status=status or 401, code=code)
        self.permanent = permanent


def _error_code(status: int, body: bytes) -> tuple[str | None, str]:
    """(code, human message) from a token endpoint error body."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    code: str | None = None
    msg = ""
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict):
            code = err.get("code") if isinstance(err.get("code"), str) else None
            code = code or (err.get("type") if isinstance(err.get("type"), str) else None)
            msg = err.get("message") if isinstance(err.get("message"), str) else ""
        elif isinstance(err, str):
            code = err
            desc = data.get("error_description")
            msg = desc if isinstance(desc, str) else ""
        if code is None and isinstance(data.get("code"), str):
            code = data["code"]
        if not msg and isinstance(data.get("message"), str):
            msg = data["message"]
        if not msg and isinstance(data.get("detail"), str):
            msg = data["detail"]
    if not msg:
        msg = body.decode("utf-8", "replace").strip()[:200] or f"HTTP {status}"
    low = msg.lower()
    if code is None and "refresh token" in low and "already been used" in low:
        code = "refresh_token_reused"
    return code, msg


async def _post(client: httpx.AsyncClient, url: str, *, timeout: float, **kw: Any) -> httpx.Response:
    try:
        return await client.post(url, timeout=timeout, **kw)
    except httpx.HTTPError as e:
        host = httpx.URL(url).host
        raise UpstreamUnavailable(
            f"codex: cannot reach the sign-in server {host} ({type(e).__name__}: {str(e)[:120] or 'no detail'})",
            provider="codex",
        ) from e


async def exchange_code(
    client: httpx.AsyncClient, endpoints: Endpoints, *, code: str, redirect_uri: str, verifier: str, timeout: float = 30.0
) -> TokenSet:
    """Authorization code -> tokens (form-encoded, as the CLI does)."""
    resp = await _post(
        client,
        endpoints.token_url,
        timeout=timeout,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": CLIENT_ID,
            "code_verifier": verifier,
        },
        headers={"accept": "application/json"},
    )
    if resp.status_code >= 400:
        code_, msg = _error_code(resp.status_code, resp.content)
        raise SignInError(f"the sign-in server refused the code exchange (HTTP {resp.status_code}: {msg})", code=code_)
    try:
        return TokenSet.from_response(resp.json())
    except ValueError as e:
        raise SignInError(f"the sign-in server sent an unusable token answer ({e})", permanent=True) from None


async def refresh(client: httpx.AsyncClient, endpoints: Endpoints, previous: TokenSet, timeout: float = 30.0) -> TokenSet:
    """Refresh-token grant (JSON body, as the CLI sends). Raises SignInError: ``permanent`` when
    the refresh token is expired / reused / revoked (or any 400/401), else transient."""
    resp = await _post(
        client,
        endpoints.token_url,
        timeout=timeout,
        json={"client_id": CLIENT_ID, "grant_type": "refresh_token", "refresh_token": previous.refresh_token},
        headers={"accept": "application/json"},
    )
    if resp.status_code >= 400:
        code, msg = _error_code(resp.status_code, resp.content)
        permanent = code in PERMANENT_REFRESH_CODES or resp.status_code in (400, 401, 403)
        raise SignInError(
            f"token refresh failed (HTTP {resp.status_code}{', ' + code if code else ''}: {msg})",
            code=code,
            permanent=permanent,
            status=resp.status_code,
        )
    try:
        return TokenSet.from_response(resp.json(), previous=previous)
    except ValueError as e:
        raise SignInError(f"token refresh sent an unusable answer ({e})", permanent=False) from None


# --------------------------------------------------------------------------- device code


@dataclass(frozen=True)
class DeviceCode:
    device_auth_id: str
    user_code: str
    interval: float
    verification_uri: str
    expires_in: float = 900.0

    def __repr__(self) -> str:
        return f"DeviceCode(user_code={self.user_code!r}, interval={self.interval!r})"


async def request_device_code(client: httpx.AsyncClient, endpoints: Endpoints, timeout: float = 30.0) -> DeviceCode:
    resp = await _post(client, endpoints.device_usercode_url, timeout=timeout, json={"client_id": CLIENT_ID})
    if resp.status_code == 404:
        raise SignInError(
            "device sign-in is not enabled on this sign-in server; use the browser sign-in "
            "(antiapi login codex) or --paste",
            permanent=True,
        )
    if resp.status_code >= 400:
        _, msg = _error_code(resp.status_code, resp.content)
        raise SignInError(f"could not start device sign-in (HTTP {resp.status_code}: {msg})")
    data = resp.json()
    dev_id = data.get("device_auth_id")
    user_code = data.get("user_code") or data.get("usercode")
    if not isinstance(dev_id, str) or not isinstance(user_code, str):
        raise SignInError("the sign-in server's device answer lacks device_auth_id/user_code")
    interval = _num(data.get("interval"))
    return DeviceCode(
        device_auth_id=dev_id,
        user_code=user_code,
        interval=max(0.05, interval if interval is not None else 5.0),
        verification_uri=endpoints.device_verification_url,
    )


async def poll_device_code(
    client: httpx.AsyncClient, endpoints: Endpoints, dc: DeviceCode, timeout: float = 30.0
) -> tuple[str, str] | None:
    """One poll: (authorization_code, code_verifier) when approved, None while pending."""
    resp = await _post(
        client,
        endpoints.device_token_url,
        timeout=timeout,
        json={"device_auth_id": dc.device_auth_id, "user_code": dc.user_code},
    )
    if resp.status_code in (403, 404):
        return None
    if resp.status_code >= 400:
        code, msg = _error_code(resp.status_code, resp.content)
        raise SignInError(f"device sign-in failed (HTTP {resp.status_code}: {msg})", code=code)
    data = resp.json()
    code, verifier = data.get("authorization_code"), data.get("code_verifier")
    if not isinstance(code, str) or not isinstance(verifier, str):
        raise SignInError("the sign-in server's device answer lacks authorization_code/code_verifier")
    return code, verifier

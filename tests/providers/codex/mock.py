"""A faithful fake of the ChatGPT Codex backend and its OAuth server (upstreams.md §1, §4.1).

One raw ASGI app, served by uvicorn in a background thread on 127.0.0.1 (ephemeral port):

auth (``auth_base`` = ``root_url``)
  GET  /oauth/authorize                      302 -> redirect_uri?code=..&state=<echo>; records the PKCE challenge
  POST /oauth/token                          authorization_code (PKCE verifier checked) | refresh_token
                                             (JSON or form; rotation; reuse -> 401 refresh_token_reused;
                                             knobs for refresh_token_expired / _invalidated)
  POST /api/accounts/deviceauth/usercode     {"device_auth_id","user_code","interval": "<string>"}
  POST /api/accounts/deviceauth/token        403 for ``device_pending`` polls, then code + server-side PKCE pair
backend (``base_url`` = ``root_url/backend-api/codex``)
  POST /backend-api/codex/responses          Bearer + ChatGPT-Account-Id checked; body validated (store false,
                                             stream true, instructions, unsupported params, model, effort,
                                             item ids); SSE with sequence_number in §1.7 order; x-codex-* headers
  POST /backend-api/codex/responses/compact  non-streaming JSON; rejects stream:true
  GET  /backend-api/codex/models             catalogue (+ ETag); ``min_version_filter`` knob
  GET  /backend-api/wham/usage               snapshot consistent with the header counters

Replies: ``handler(req)`` (non-None wins), then the account's queue, the global queue, ``default``,
then an echo ("mock reply: <last user text>"). Items: tests.mocks.scripts replies (Reply, Text,
Thinking, ToolCall, lists) and faults (DropAfter, Stall, MidStreamError, Delay, Error, Raw), plus the
Codex-specific ``UsageLimit``, ``RateLimited``, ``Overloaded``, ``Unauthorized``.

Must not import antiapi: it follows the protocol, not our code.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import inspect
import json
import secrets
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import uvicorn

from tests.mocks import openai_responses as _resp
from tests.mocks._common import Ctx, estimate_tokens, sse
from tests.mocks.scripts import Delay, DropAfter, Error, MidStreamError, Plan, Raw, Reply, Stall, Text, to_plan

CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
AUTH_CLAIM = "https://api.openai.com/auth"
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max", "ultra")
UNSUPPORTED = (
    "max_output_tokens", "max_completion_tokens", "temperature", "top_p", "presence_penalty",
    "frequency_penalty", "seed", "metadata", "top_logprobs", "truncation", "user", "prompt_cache_retention",
    "prompt_cache_options", "safety_identifier", "previous_response_id", "stream_options", "generate",
)


def _span(lo: str, hi: str) -> list[str]:
    return list(EFFORTS[EFFORTS.index(lo): EFFORTS.index(hi) + 1])


def model_entry(slug: str, default: str = "medium", efforts: list[str] | None = None, *, visibility: str = "list",
                minimal_client_version: str = "0.99.0", context: int = 272000, priority: int = 1) -> dict[str, Any]:
    efforts = efforts or _span("low", "xhigh")
    return {
        "slug": slug, "display_name": slug.upper(), "description": f"{slug} (mock)",
        "default_reasoning_level": default,
        "supported_reasoning_levels": [{"effort": e, "description": e} for e in efforts],
        "visibility": visibility, "minimal_client_version": minimal_client_version, "supported_in_api": True,
        "priority": priority, "context_window": context, "max_context_window": context,
        "auto_compact_token_limit": int(context * 0.9), "truncation_policy": {"mode": "tokens", "limit": 10000},
        "shell_type": "shell_command", "apply_patch_tool_type": "freeform", "web_search_tool_type": "text",
        "input_modalities": ["text", "image"], "supports_parallel_tool_calls": True,
        "supports_reasoning_summaries": True, "default_reasoning_summary": "auto",
        "available_in_plans": ["plus", "pro", "team"], "service_tiers": [{"id": "priority", "name": "Fast"}],
        "prefer_websockets": False, "use_responses_lite": False, "base_instructions": "You are Codex.",
    }


#: The mock's catalogue: the §1.11 names plus one the static fallback list does not have.
DEFAULT_CATALOGUE = [
    model_entry("gpt-5.6-sol", "low", _span("low", "ultra")),
    model_entry("gpt-5.5", "medium", _span("low", "xhigh")),
    model_entry("gpt-5.4-mini", "medium", _span("low", "xhigh")),
    model_entry("gpt-5.3-codex-spark", "high", _span("low", "xhigh"), context=128000),
    model_entry("gpt-5.9-mock", "medium", ["low", "medium", "high"], minimal_client_version="0.144.0"),
    model_entry("codex-auto-review", "medium", _span("low", "max"), visibility="hide"),
]


# --------------------------------------------------------------------------- JWT


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(payload: dict[str, Any]) -> str:
    head = b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "mock"}).encode())
    body = b64url(json.dumps(payload, separators=(",", ":")).encode())
    return f"{head}.{body}.{b64url(secrets.token_bytes(32))}"


# --------------------------------------------------------------------------- Codex-specific faults


@dataclass
class UsageLimit:
    """429 usage_limit_reached with ``resets_at`` / ``resets_in_seconds`` and 100 % headers."""

    resets_in: int = 13872
    plan: str | None = None


@dataclass
class RateLimited:
    """A plain 429 (transient); ``retry_after`` None sends no retry-after header."""

    retry_after: float | None = 2


@dataclass
class Overloaded:
    """503 server_is_overloaded (``code`` may be "slow_down")."""

    code: str = "server_is_overloaded"


@dataclass
class Unauthorized:
    """401 {"detail": "Unauthorized"} whatever the token."""


# --------------------------------------------------------------------------- state


@dataclass
class MockAccount:
    email: str
    account_id: str
    plan: str = "plus"
    user_id: str = ""
    primary_used: float = 0.0
    secondary_used: float = 0.0
    step: float = 1.5  # percent of the 5-hour window one request uses
    primary_reset_in: int = 9000
    secondary_reset_in: int = 400000
    #: None | "refresh_token_expired" | "refresh_token_invalidated": every refresh answers that
    refresh_error: str | None = None
    queue: deque = field(default_factory=deque)
    refreshes: int = 0
    responses: int = 0


@dataclass
class MockRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any = None
    form: dict[str, str] | None = None
    account: str | None = None  # email of the authenticated account (backend routes)
    status: int | None = None
    received_at: float = field(default_factory=time.monotonic)


@dataclass
class _Out:
    status: int
    headers: dict[str, str]
    body: bytes = b""
    events: list[bytes] | None = None
    faults: list[Any] = field(default_factory=list)
    ctx: Ctx | None = None


class CodexMock:
    def __init__(
        self,
        *,
        access_ttl: float = 3600.0,
        refresh_delay: float = 0.0,
        exchange_delay: float = 0.0,
        device_pending: int = 2,
        device_interval: str = "1",
        catalogue: list[dict[str, Any]] | None = None,
        strict_instructions: bool = False,
        reject_item_ids: bool = True,
        check_effort: bool = True,
        account_mismatch_status: int = 401,
        empty_completed_output: bool = False,
        min_version_filter: bool = False,
        strict_redirects: bool = False,
    ) -> None:
        self.access_ttl = access_ttl
        self.refresh_delay = refresh_delay
        self.exchange_delay = exchange_delay
        self.device_pending = device_pending
        self.device_interval = device_interval
        self.catalogue = catalogue if catalogue is not None else [dict(m) for m in DEFAULT_CATALOGUE]
        self.strict_instructions = strict_instructions
        self.reject_item_ids = reject_item_ids
        self.check_effort = check_effort
        self.account_mismatch_status = account_mismatch_status
        self.empty_completed_output = empty_completed_output
        self.min_version_filter = min_version_filter
        self.strict_redirects = strict_redirects
        self.models_fault: Any = None  # Error/Raw/Delay for GET /models
        self.usage_fault: Any = None
        self.accounts: dict[str, MockAccount] = {}
        self.login_as: str | None = None  # account that signs in at /oauth/authorize (default: first)
        self.requests: list[MockRequest] = []
        self.errors: list[BaseException] = []
        self.handler = None
        self.default: Any = None
        self.queue: deque = deque()
        self.issued_signatures: set[str] = set()
        # auth state
        self.codes: dict[str, dict[str, Any]] = {}
        self.access: dict[str, dict[str, Any]] = {}  # token -> {email, exp, valid}
        self.refresh_tokens: dict[str, dict[str, Any]] = {}  # token -> {email, active}
        self.devices: dict[str, dict[str, Any]] = {}
        self.token_exchanges = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._abort: asyncio.Event | None = None
        self.port = 0

    # ------------------------------------------------------------------ public API

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth_base(self) -> str:
        return self.root_url

    @property
    def base_url(self) -> str:
        return self.root_url + "/backend-api/codex"

    def provider_yaml(self, name: str = "codex", *, account: str | None = None, options: dict | None = None,
                      indent: str = "  ") -> str:
        """A ``providers:`` entry pointing every codex URL at this mock."""
        lines = [f"{indent}{name}:", f"{indent}  type: codex", f'{indent}  base_url: "{self.base_url}"',
                 f"{indent}  endpoints:", f'{indent}    auth_base: "{self.auth_base}"']
        if account:
            lines.append(f"{indent}  account: {account}")
        if options:
            lines.append(f"{indent}  options:")
            lines += [f"{indent}    {k}: {json.dumps(v)}" for k, v in options.items()]
        return "\n".join(lines) + "\n"

    def add_account(self, email: str, plan: str = "plus", **kw: Any) -> MockAccount:
        acc = MockAccount(email=email, account_id=kw.pop("account_id", str(uuid.uuid4())), plan=plan,
                          user_id="user-" + secrets.token_hex(6), **kw)
        self.accounts[email] = acc
        return acc

    def account_by_id(self, account_id: str) -> MockAccount | None:
        return next((a for a in self.accounts.values() if a.account_id == account_id), None)

    def issue_tokens(self, email: str, *, access_ttl: float | None = None) -> dict[str, Any]:
        """A token answer as /oauth/token gives it (registered here, so the tokens work)."""
        acc = self.accounts[email]
        now = time.time()
        ttl = self.access_ttl if access_ttl is None else access_ttl
        exp = int(now + ttl)
        id_token = make_jwt({
            "iss": "https://auth.openai.com", "aud": [CLIENT_ID], "sub": acc.user_id, "email": email,
            "email_verified": True, "iat": int(now), "exp": int(now + 3600),
            AUTH_CLAIM: {"chatgpt_account_id": acc.account_id, "chatgpt_plan_type": acc.plan,
                         "chatgpt_user_id": acc.user_id, "user_id": acc.user_id, "organizations": []},
        })
        access = make_jwt({"iss": "https://auth.openai.com", "aud": ["https://api.openai.com/v1"], "exp": exp,
                           "iat": int(now), "jti": secrets.token_hex(8),
                           AUTH_CLAIM: {"chatgpt_account_id": acc.account_id}})
        refresh = "rt_" + secrets.token_urlsafe(32)
        self.access[access] = {"email": email, "exp": exp, "valid": True}
        self.refresh_tokens[refresh] = {"email": email, "active": True}
        return {"id_token": id_token, "access_token": access, "refresh_token": refresh,
                "expires_in": int(ttl), "token_type": "Bearer", "scope": "openid profile email offline_access"}

    def credentials_record(self, email: str, **kw: Any) -> dict[str, Any]:
        """What ``antiapi login codex`` stores for ``email`` (label = email), from fresh tokens."""
        t = self.issue_tokens(email, **kw)
        exp = json.loads(base64.urlsafe_b64decode(t["access_token"].split(".")[1] + "=="))["exp"]
        acc = self.accounts[email]
        return {"label": email, "email": email, "account_id": acc.account_id, "plan": acc.plan,
                "access_token": t["access_token"], "refresh_token": t["refresh_token"], "id_token": t["id_token"],
                "expires_at": exp, "last_refresh": time.time()}

    def expire_access_tokens(self, email: str | None = None) -> None:
        """The backend stops accepting the current access tokens (401 -> refresh)."""
        for info in self.access.values():
            if email is None or info["email"] == email:
                info["valid"] = False

    def enqueue(self, *items: Any, account: str | None = None) -> "CodexMock":
        q = self.accounts[account].queue if account else self.queue
        q.extend(items)
        return self

    def responses_requests(self, account: str | None = None) -> list[MockRequest]:
        return [r for r in self.requests if r.path.endswith("/responses")
                and (account is None or r.account == account)]

    @property
    def refreshes(self) -> int:
        return sum(a.refreshes for a in self.accounts.values())

    def start(self) -> "CodexMock":
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(256)
        self._sock = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self, lifespan="off", log_config=None, access_log=False, http="h11",
                                loop="asyncio", ws="none", timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True,
                                        name=f"codex-mock-{self.port}")
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("codex mock failed to start")
            time.sleep(0.005)
        return self

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._abort = asyncio.Event()
        assert self._server is not None and self._sock is not None
        await self._server.serve(sockets=[self._sock])

    def stop(self) -> None:
        if self._server is None:
            return
        if self._loop is not None and self._abort is not None:
            self._loop.call_soon_threadsafe(self._abort.set)
        self._server.should_exit = True
        assert self._thread is not None
        self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()
        self._server = None

    def __enter__(self) -> "CodexMock":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ ASGI

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        headers: dict[str, str] = {}
        for k, v in scope["headers"]:
            headers[k.decode("latin-1").lower()] = v.decode("latin-1")
        qs = scope.get("query_string", b"").decode("latin-1")
        req = MockRequest(scope["method"], scope["path"], dict(parse_qsl(qs, keep_blank_values=True)), headers, body)
        ctype = headers.get("content-type", "")
        if body:
            if "application/x-www-form-urlencoded" in ctype:
                req.form = dict(parse_qsl(body.decode(), keep_blank_values=True))
            else:
                try:
                    req.json = json.loads(body)
                except ValueError:
                    req.json = None
        self.requests.append(req)
        disconnected = asyncio.Event()

        async def watch() -> None:
            m = await receive()
            if m["type"] == "http.disconnect":
                disconnected.set()

        watcher = asyncio.ensure_future(watch())
        try:
            try:
                out = await self._route(req)
            except Exception as exc:  # surfaced through .errors and a 500
                self.errors.append(exc)
                out = _json(500, {"detail": f"mock internal error: {exc!r}"})
            req.status = out.status
            await self._send(out, send, disconnected)
        finally:
            watcher.cancel()

    async def _route(self, req: MockRequest) -> _Out:
        m, p = req.method, req.path.rstrip("/")
        if m == "GET" and p == "/oauth/authorize":
            return self._authorize(req)
        if m == "POST" and p == "/oauth/token":
            return await self._token(req)
        if m == "POST" and p == "/api/accounts/deviceauth/usercode":
            return self._device_usercode(req)
        if m == "POST" and p == "/api/accounts/deviceauth/token":
            return self._device_token(req)
        if p.startswith("/backend-api/"):
            acc, err = self._auth(req)
            if err is not None:
                return err
            assert acc is not None
            req.account = acc.email
            if m == "POST" and p == "/backend-api/codex/responses":
                return await self._responses(req, acc)
            if m == "POST" and p == "/backend-api/codex/responses/compact":
                return self._compact(req, acc)
            if m == "GET" and p == "/backend-api/codex/models":
                return await self._models(req)
            if m == "GET" and p == "/backend-api/wham/usage":
                return await self._usage(acc)
        return _json(404, {"detail": "Not Found"})

    # ------------------------------------------------------------------ auth server

    def _authorize(self, req: MockRequest) -> _Out:
        q = req.query
        if q.get("client_id") != CLIENT_ID:
            return _json(400, {"error": "invalid_client", "error_description": "Unknown client"})
        if q.get("response_type") != "code" or q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return _json(400, {"error": "invalid_request", "error_description": "PKCE S256 and response_type=code are required"})
        redirect = q.get("redirect_uri", "")
        u = urlsplit(redirect)
        allowed = u.scheme == "http" and u.hostname in ("localhost", "127.0.0.1") and u.path == "/auth/callback"
        if self.strict_redirects:
            allowed = allowed and u.port in (1455, 1457)
        if not allowed:
            return _json(400, {"error": "invalid_request", "error_description": f"redirect_uri not allowed: {redirect}"})
        email = self.login_as or next(iter(self.accounts), None)
        if email is None:
            return _json(500, {"detail": "mock has no account to sign in"})
        code = "ac_" + secrets.token_urlsafe(24)
        self.codes[code] = {"challenge": q["code_challenge"], "redirect_uri": redirect, "email": email, "used": False,
                            "scope": q.get("scope", "")}
        sep = "&" if "?" in redirect else "?"
        loc = redirect + sep + urlencode({"code": code, "scope": q.get("scope", ""), "state": q.get("state", "")})
        return _Out(302, {"location": loc, "content-length": "0"})

    async def _token(self, req: MockRequest) -> _Out:
        data = req.form if req.form is not None else (req.json if isinstance(req.json, dict) else {})
        grant = data.get("grant_type")
        if data.get("client_id") != CLIENT_ID:
            return _json(401, {"error": {"code": "invalid_client", "message": "Unknown or missing client_id."}})
        if grant == "authorization_code":
            self.token_exchanges += 1
            if self.exchange_delay:
                await asyncio.sleep(self.exchange_delay)
            info = self.codes.get(str(data.get("code")))
            if info is None or info["used"]:
                return _json(400, {"error": "invalid_grant", "error_description": "The authorization code is invalid or was already used."})
            info["used"] = True
            if data.get("redirect_uri") != info["redirect_uri"]:
                return _json(400, {"error": "invalid_grant", "error_description": "redirect_uri does not match the authorization request."})
            verifier = str(data.get("code_verifier") or "")
            if not verifier or b64url(hashlib.sha256(verifier.encode()).digest()) != info["challenge"]:
                return _json(400, {"error": "invalid_grant", "error_description": "PKCE verification failed (code_verifier)."})
            info["verified"] = True
            return _json(200, self.issue_tokens(info["email"]))
        if grant == "refresh_token":
            rt = str(data.get("refresh_token") or "")
            info = self.refresh_tokens.get(rt)
            if info is None:
                return _json(401, {"error": {"code": "refresh_token_invalidated", "message": "Invalid refresh token."}})
            acc = self.accounts[info["email"]]
            if self.refresh_delay:
                await asyncio.sleep(self.refresh_delay)
            acc.refreshes += 1
            if acc.refresh_error:
                return _json(401, {"error": {"code": acc.refresh_error, "message": f"Could not refresh: {acc.refresh_error}."}})
            if not info["active"]:
                return _json(401, {"error": {"code": "refresh_token_reused", "message":
                                             "Your refresh token has already been used to generate a new access token. Please try signing in again."}})
            info["active"] = False
            tokens = self.issue_tokens(info["email"])
            return _json(200, tokens)
        return _json(400, {"error": "unsupported_grant_type", "error_description": f"grant_type {grant!r} is not supported"})

    def _device_usercode(self, req: MockRequest) -> _Out:
        data = req.json if isinstance(req.json, dict) else {}
        if data.get("client_id") != CLIENT_ID:
            return _json(400, {"error": {"code": "invalid_client", "message": "Unknown client_id"}})
        dev = "dev_" + secrets.token_hex(8)
        code = "-".join(secrets.token_hex(2).upper() for _ in range(2))
        self.devices[dev] = {"user_code": code, "polls": 0, "email": self.login_as or next(iter(self.accounts))}
        return _json(200, {"device_auth_id": dev, "user_code": code, "interval": self.device_interval})

    def _device_token(self, req: MockRequest) -> _Out:
        data = req.json if isinstance(req.json, dict) else {}
        info = self.devices.get(str(data.get("device_auth_id")))
        if info is None or data.get("user_code") != info["user_code"]:
            return _json(404, {"error": {"code": "deviceauth_not_found", "message": "Unknown device code"}})
        info["polls"] += 1
        if info["polls"] <= self.device_pending:
            return _json(403, {"error": {"code": "deviceauth_authorization_pending", "message": "Authorization pending"}})
        verifier = b64url(secrets.token_bytes(64))
        challenge = b64url(hashlib.sha256(verifier.encode()).digest())
        code = "ac_" + secrets.token_urlsafe(24)
        self.codes[code] = {"challenge": challenge, "redirect_uri": self.root_url + "/deviceauth/callback",
                            "email": info["email"], "used": False}
        return _json(200, {"authorization_code": code, "code_verifier": verifier, "code_challenge": challenge})

    # ------------------------------------------------------------------ backend

    def _auth(self, req: MockRequest) -> tuple[MockAccount | None, _Out | None]:
        auth = req.headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else ""
        info = self.access.get(token)
        if info is None or not info["valid"] or info["exp"] < time.time():
            return None, _json(401, {"detail": "Unauthorized"})
        acc = self.accounts[info["email"]]
        if req.headers.get("chatgpt-account-id") != acc.account_id:
            return None, _json(self.account_mismatch_status, {"detail": "ChatGPT-Account-Id does not match the token"})
        return acc, None

    def codex_headers(self, acc: MockAccount, *, limited: bool = False) -> dict[str, str]:
        now = int(time.time())
        primary = 100.0 if limited else acc.primary_used
        return {
            "x-codex-primary-used-percent": _fmt(min(100.0, primary)),
            "x-codex-primary-window-minutes": "300",
            "x-codex-primary-reset-at": str(now + acc.primary_reset_in),
            "x-codex-primary-reset-after-seconds": str(acc.primary_reset_in),
            "x-codex-secondary-used-percent": _fmt(min(100.0, acc.secondary_used)),
            "x-codex-secondary-window-minutes": "10080",
            "x-codex-secondary-reset-at": str(now + acc.secondary_reset_in),
            "x-codex-secondary-reset-after-seconds": str(acc.secondary_reset_in),
            "x-codex-primary-over-secondary-limit-percent": "0",
            "x-codex-plan-type": acc.plan,
            "x-codex-active-limit": "codex",
            "x-codex-credits-has-credits": "False",
            "x-codex-credits-unlimited": "False",
            "x-codex-credits-balance": "0",
            "x-models-etag": 'W/"mock-models-1"',
            "x-request-id": str(uuid.uuid4()),
        }

    def _slugs(self) -> dict[str, dict[str, Any]]:
        return {m["slug"]: m for m in self.catalogue}

    def _validate(self, body: Any) -> _Out | None:
        if not isinstance(body, dict):
            return _json(400, {"detail": "Invalid JSON body"})
        if body.get("store") is not False:
            return _json(400, {"detail": "Store must be set to false"})
        if body.get("stream") is not True:
            return _json(400, {"detail": "Stream must be set to true"})
        if not isinstance(body.get("instructions"), str):
            return _json(400, {"detail": "Instructions are required"})
        if self.strict_instructions and body["instructions"] not in ("",):
            return _json(400, {"detail": "Instructions are not valid"})
        for k in UNSUPPORTED:
            if k in body:
                return _json(400, {"detail": f"Unsupported parameter: {k}"})
        model = body.get("model")
        info = self._slugs().get(model)
        if info is None:
            return _json(400, {"detail": f"The '{model}' model is not supported when using Codex with a ChatGPT account."})
        r = body.get("reasoning")
        if isinstance(r, dict) and self.check_effort and r.get("effort") is not None:
            levels = [x["effort"] for x in info["supported_reasoning_levels"]]
            if r["effort"] not in levels:
                return _json(400, {"error": {"message": f"Unsupported value: '{r['effort']}' is not supported with the "
                                                        f"'{model}' model. Supported values are: {levels}.",
                                             "type": "invalid_request_error", "param": "reasoning.effort",
                                             "code": "unsupported_value"}})
        items = body.get("input")
        if not isinstance(items, list):
            return _json(400, {"detail": "Input must be a list"})
        for i, it in enumerate(items):
            if not isinstance(it, dict):
                continue
            if it.get("type", "message") == "message" and it.get("role") not in ("user", "assistant", "developer"):
                return _json(400, {"error": {"message": f"Invalid value: '{it.get('role')}'. Supported values are: "
                                                        "'assistant', 'developer', and 'user'.",
                                             "type": "invalid_request_error", "param": f"input[{i}].role",
                                             "code": "invalid_value"}})
            if self.reject_item_ids and "id" in it and it.get("type") in ("reasoning", "message", "function_call"):
                return _json(404, {"error": {"message": f"Item with id '{it['id']}' not found. Items are not persisted "
                                                        "when `store` is set to false. Try again with `store` set to "
                                                        "true, or remove this item from your input.",
                                             "type": "invalid_request_error", "param": "input", "code": None}})
        err = _resp.validate(body, strict_params=False, signatures=self.issued_signatures)
        if err is not None:
            return _json(err.status or 400, {"error": {"message": err.message, "type": "invalid_request_error",
                                                       "param": err.param, "code": err.code}})
        return None

    async def _pick(self, req: MockRequest, acc: MockAccount) -> Any:
        if self.handler is not None:
            r = self.handler(req)
            if inspect.isawaitable(r):
                r = await r
            if r is not None:
                return r
        if acc.queue:
            return acc.queue.popleft()
        if self.queue:
            return self.queue.popleft()
        d = self.default(req) if callable(self.default) else self.default
        if d is not None:
            return d
        return Reply([Text(f"mock reply: {_resp.last_user_text(req.json or {})}")])

    async def _responses(self, req: MockRequest, acc: MockAccount) -> _Out:
        body = req.json
        bad = self._validate(body)
        if bad is not None:
            bad.headers.update(self.codex_headers(acc))
            return bad
        item = await self._pick(req, acc)
        faults: list[Any] = []
        while isinstance(item, Delay):
            faults.append(item)
            item = item.reply if item.reply is not None else None
        if isinstance(item, UsageLimit):
            now = int(time.time())
            return _json(429, {"error": {"type": "usage_limit_reached", "message": "The usage limit has been reached",
                                         "plan_type": item.plan or acc.plan, "resets_at": now + item.resets_in,
                                         "eligible_promo": None, "resets_in_seconds": item.resets_in}},
                         {**self.codex_headers(acc, limited=True)}, faults)
        if isinstance(item, RateLimited):
            h = self.codex_headers(acc)
            if item.retry_after is not None:
                h["retry-after"] = _fmt(item.retry_after)
            return _json(429, {"error": {"type": "rate_limit_error", "code": "rate_limit_exceeded",
                                         "message": "Rate limit reached for requests. Please try again later."}}, h, faults)
        if isinstance(item, Overloaded):
            return _json(503, {"error": {"code": item.code, "message": "Our servers are currently overloaded. Please try again later.",
                                         "type": "service_unavailable_error"}}, self.codex_headers(acc), faults)
        if isinstance(item, Unauthorized):
            return _json(401, {"detail": "Unauthorized"})
        plan = item if isinstance(item, Plan) else to_plan(item)
        plan.faults = [*faults, *plan.faults]
        if plan.error is not None:
            e = plan.error
            payload = e.body if e.body is not None else {"error": {"message": e.message or "error", "type": e.type,
                                                                    "code": e.code, "param": e.param}}
            h = {**self.codex_headers(acc), **e.headers}
            if e.retry_after is not None:
                h["retry-after"] = _fmt(e.retry_after)
            out = _json(e.status, payload, h, plan.faults) if not isinstance(payload, (str, bytes)) else \
                _Out(e.status, {**h, "content-type": "text/plain"}, payload if isinstance(payload, bytes) else payload.encode(), plan.faults)
            return out
        if plan.raw is not None:
            raw: Raw = plan.raw
            data = raw.body if isinstance(raw.body, bytes) else raw.body.encode() if isinstance(raw.body, str) else json.dumps(raw.body).encode()
            if raw.events is not None:
                return _Out(raw.status, {"content-type": raw.content_type, **raw.headers},
                            events=[e.encode() if isinstance(e, str) else e for e in raw.events], faults=plan.faults)
            return _Out(raw.status, {"content-type": raw.content_type, **raw.headers}, data, faults=plan.faults)
        reply = plan.reply or Reply([Text(f"mock reply: {_resp.last_user_text(body)}")])
        ctx = Ctx(body=body, model=body["model"], stream=True, input_estimate=estimate_tokens(body))
        events = _resp.render_events(reply, ctx)
        for p in reply.parts:
            sig = getattr(p, "sig", None)
            if isinstance(sig, str):
                self.issued_signatures.add(sig)
        if self.empty_completed_output:
            last = json.loads(events[-1].split(b"data: ", 1)[1])
            last["response"]["output"] = []
            events[-1] = sse(last, last["type"])
        acc.responses += 1
        acc.primary_used = min(100.0, acc.primary_used + acc.step)
        acc.secondary_used = min(100.0, acc.secondary_used + acc.step / 10)
        headers = {**self.codex_headers(acc), "content-type": "text/event-stream", "cache-control": "no-cache",
                   **reply.headers}
        return _Out(200, headers, events=events, faults=plan.faults, ctx=ctx)

    def _compact(self, req: MockRequest, acc: MockAccount) -> _Out:
        body = req.json if isinstance(req.json, dict) else None
        if body is None:
            return _json(400, {"detail": "Invalid JSON body"})
        if "stream" in body:
            return _json(400, {"detail": "Unsupported parameter: stream"})
        return _json(200, {"id": "resp_" + secrets.token_hex(12), "object": "response.compaction",
                           "output": [{"type": "compaction", "encrypted_content": "cmp_" + secrets.token_hex(16)}],
                           "usage": {"input_tokens": estimate_tokens(body), "output_tokens": 10, "total_tokens": 0}},
                     self.codex_headers(acc))

    async def _fault(self, item: Any) -> _Out | None:
        if item is None:
            return None
        if isinstance(item, Delay):
            await asyncio.sleep(item.first_byte_seconds)
            return await self._fault(item.reply)
        if isinstance(item, Error):
            return _json(item.status, item.body if isinstance(item.body, dict) else {"detail": item.message or "error"})
        if isinstance(item, Raw):
            return _Out(item.status, {"content-type": item.content_type, **item.headers},
                        item.body if isinstance(item.body, bytes) else str(item.body).encode())
        return None

    async def _models(self, req: MockRequest) -> _Out:
        f = await self._fault(self.models_fault)
        if f is not None:
            return f
        models = self.catalogue
        if self.min_version_filter:
            have = _ver(req.query.get("client_version", "0"))
            models = [m for m in models if _ver(m.get("minimal_client_version", "0")) <= have]
        return _json(200, {"models": models}, {"etag": 'W/"mock-models-1"'})

    async def _usage(self, acc: MockAccount) -> _Out:
        f = await self._fault(self.usage_fault)
        if f is not None:
            return f
        now = int(time.time())
        reached = {"kind": "rate_limit_reached"} if acc.primary_used >= 100 or acc.secondary_used >= 100 else None
        return _json(200, {
            "plan_type": acc.plan,
            "rate_limit": {
                "primary_window": {"used_percent": acc.primary_used, "limit_window_seconds": 18000,
                                   "reset_after_seconds": acc.primary_reset_in, "reset_at": now + acc.primary_reset_in},
                "secondary_window": {"used_percent": acc.secondary_used, "limit_window_seconds": 604800,
                                     "reset_after_seconds": acc.secondary_reset_in, "reset_at": now + acc.secondary_reset_in},
            },
            "credits": {"has_credits": False, "unlimited": False, "balance": "0"},
            "additional_rate_limits": [],
            "rate_limit_reached_type": reached,
        })

    # ------------------------------------------------------------------ sending

    async def _sleep(self, seconds: float, disconnected: asyncio.Event) -> bool:
        assert self._abort is not None
        waiters = [asyncio.ensure_future(self._abort.wait()), asyncio.ensure_future(disconnected.wait())]
        try:
            done, _ = await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        return not done

    async def _send(self, out: _Out, send: Any, disconnected: asyncio.Event) -> None:
        faults = out.faults
        delay = sum(f.first_byte_seconds for f in faults if isinstance(f, Delay))
        if delay and not await self._sleep(delay, disconnected):
            return
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in out.headers.items() if k != "content-length"]
        if out.events is None:
            headers.append((b"content-length", str(len(out.body)).encode()))
            await send({"type": "http.response.start", "status": out.status, "headers": headers})
            await send({"type": "http.response.body", "body": out.body, "more_body": False})
            return
        drop = next((f for f in faults if isinstance(f, DropAfter)), None)
        mid = next((f for f in faults if isinstance(f, MidStreamError)), None)
        stalls = [f for f in faults if isinstance(f, Stall)]
        events = out.events
        n = len(events)
        await send({"type": "http.response.start", "status": out.status, "headers": headers})
        for i in range(n + 1):
            for s in stalls:
                if s.after_events == i and not await self._sleep(s.seconds, disconnected):
                    return
            if mid is not None and i == min(mid.after_events, max(n - 1, 0)):
                assert out.ctx is not None
                for ev in _resp.mid_stream_error(mid, out.ctx, i):
                    await send({"type": "http.response.body", "body": ev, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            if drop is not None and i == min(drop.n_events, max(n - 1, 0)):
                if not drop.abrupt:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            if i == n:
                break
            if disconnected.is_set():
                return
            await send({"type": "http.response.body", "body": events[i], "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _json(status: int, data: Any, headers: dict[str, str] | None = None, faults: list[Any] | None = None) -> _Out:
    h = {"content-type": "application/json"}
    if headers:
        h.update(headers)
    return _Out(status, h, json.dumps(data).encode(), faults=list(faults or []))


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _ver(v: Any) -> tuple[int, ...]:
    if isinstance(v, list):
        return tuple(int(x) for x in v)
    try:
        return tuple(int(x) for x in str(v).split("."))
    except ValueError:
        return (0,)

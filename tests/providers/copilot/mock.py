"""A faithful mock of GitHub + GitHub Copilot (upstreams.md §2 and §4.2), one server for all hosts.

Routes (``github.com`` / ``api.github.com`` / ``api.githubcopilot.com`` share one port; point the
provider's ``endpoints.github`` and ``endpoints.github_api`` at :attr:`CopilotMock.root_url`; the
token exchange names :attr:`CopilotMock.api_url` as ``endpoints.api``, so the Copilot API base is
only found by honouring it):

* ``POST /login/device/code`` and ``POST /login/oauth/access_token`` (JSON or form bodies; HTTP 200
  with ``authorization_pending`` / ``slow_down`` / ``expired_token`` / ``access_denied``), scripted
  with :meth:`CopilotMock.script_device`.
* ``GET /user`` (``Authorization: token|Bearer ghu_…``; revoked -> 401 ``Bad credentials``).
* ``GET /copilot_internal/v2/token`` (needs ``Editor-Version``) -> TokenEnvelope with configurable
  ``expires_at`` / ``refresh_in``; 403 ``no_copilot_access`` for accounts without Copilot.
* ``GET /copilot_internal/user`` -> plan and ``quota_snapshots`` (premium decreases as used).
* ``GET {api}/models``, ``POST {api}/chat/completions``, ``POST {api}/responses``: Copilot token
  (expired -> 401 plain text ``unauthorized: token expired``), ``Editor-Version`` (missing -> 400
  plain text), ``supported_endpoints`` (-> 400 ``unsupported_api_for_model``), vision header,
  premium accounting only for ``X-Initiator: user`` on premium models (402 ``quota_exceeded`` at
  0), ``x-quota-snapshot-*`` headers, an empty-choices first chunk, usage on the last chunk.
* Faults per account (:meth:`MockAccount.faults`) or per request (``handler``): any
  ``tests.mocks`` Error / Raw / DropAfter / Stall / Delay / MidStreamError, and :data:`EXPIRE`
  (401 token expired).

Must not import antiapi.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import secrets
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable
from urllib.parse import parse_qsl, quote

import uvicorn

from tests.mocks import openai_chat as _chat
from tests.mocks import openai_responses as _responses
from tests.mocks._common import Ctx, dumps, estimate_tokens, sse
from tests.mocks.scripts import Delay, DropAfter, Error, MidStreamError, Plan, Raw, Reply, Stall, Text, to_plan

EXPIRE = "expire-token"  # fault: answer this request with 401 "unauthorized: token expired"
RESET_DATE = "2099-01-01T00:00:00Z"
KNOWN_EDITORS = ("vscode/", "JetBrains-", "Neovim/", "Xcode/", "VisualStudio/", "Eclipse/")


def model_entry(mid: str, *, vendor: str = "OpenAI", premium: bool = False, multiplier: float = 0.0,
                endpoints: tuple[str, ...] = ("/chat/completions",), vision: bool = True, tools: bool = True,
                context: int = 128000, max_output: int = 16384, picker: bool = True, policy: str = "enabled",
                kind: str = "chat") -> dict[str, Any]:
    limits: dict[str, Any] = {"max_context_window_tokens": context, "max_prompt_tokens": context - max_output,
                              "max_output_tokens": max_output}
    if vision:
        limits["vision"] = {"max_prompt_image_size": 3145728, "max_prompt_images": 1,
                            "supported_media_types": ["image/jpeg", "image/png", "image/webp"]}
    supports = {"streaming": True, "tool_calls": tools, "parallel_tool_calls": tools,
                "structured_outputs": True, "vision": vision}
    return {
        "id": mid, "name": mid, "object": "model", "vendor": vendor, "version": mid, "preview": False,
        "model_picker_enabled": picker, "model_picker_category": "versatile",
        "policy": {"state": policy, "terms": "Enable access to the latest models."},
        "billing": {"is_premium": premium, "multiplier": multiplier},
        "supported_endpoints": list(endpoints),
        "capabilities": {"family": mid, "type": kind, "tokenizer": "o200k_base", "object": "model_capabilities",
                         "limits": limits, "supports": supports},
    }


DEFAULT_CATALOG = [
    model_entry("gpt-4.1"),
    model_entry("gpt-4o"),
    model_entry("gpt-4o-mini", vision=False),
    model_entry("claude-sonnet-4.5", vendor="Anthropic", premium=True, multiplier=1.0,
                endpoints=("/chat/completions", "/v1/messages")),
    model_entry("claude-opus-4.5", vendor="Anthropic", premium=True, multiplier=3.0,
                endpoints=("/chat/completions", "/v1/messages")),
    model_entry("gpt-5.3-codex", premium=True, multiplier=1.0, endpoints=("/responses",)),
    model_entry("o3-mini-text", vision=False, tools=False),
    model_entry("gpt-4o-2024-11-20", picker=False),
    model_entry("text-embedding-3-small", kind="embeddings", endpoints=("/embeddings",)),
]


@dataclass
class MockAccount:
    login: str
    github_token: str
    user_id: int
    sku: str = "yearly_subscriber"
    plan: str = "individual"
    copilot_access: bool = True
    revoked: bool = False
    premium_entitlement: float = 300.0
    premium_remaining: float = 300.0
    quota_retry_after: str | None = None
    faults: deque = field(default_factory=deque)
    exchanges: int = 0
    premium_used: float = 0.0
    issued: dict[str, float] = field(default_factory=dict)  # copilot token -> expiry (epoch)

    def snapshot(self) -> dict[str, Any]:
        ent, rem = self.premium_entitlement, self.premium_remaining
        pct = round(100.0 * max(rem, 0) / ent, 1) if ent else 0.0
        unlimited = {"entitlement": 0, "remaining": 0, "quota_remaining": 0, "percent_remaining": 100,
                     "unlimited": True, "overage_count": 0, "overage_permitted": False}
        return {
            "chat": {"quota_id": "chat", **unlimited},
            "completions": {"quota_id": "completions", **unlimited},
            "premium_interactions": {"quota_id": "premium_interactions", "entitlement": ent, "remaining": rem,
                                     "quota_remaining": rem, "percent_remaining": pct, "unlimited": False,
                                     "overage_count": 0, "overage_permitted": False},
        }

    def premium_header(self) -> str:
        ent, rem = self.premium_entitlement, self.premium_remaining
        pct = round(100.0 * max(rem, 0) / ent, 1) if ent else 0.0
        return f"ent={int(ent)}&ov=0.0&ovPerm=false&rem={pct}&rst={quote(RESET_DATE, safe='')}"


@dataclass
class DeviceScript:
    login: str
    pending: int = 0
    slow_down: tuple[int, ...] = ()  # 0-based poll numbers answered with slow_down
    outcome: str = "success"  # success | expired | denied
    interval: int = 0
    expires_in: int = 900
    user_code: str = "WDJB-MJHT"
    device_code: str = field(default_factory=lambda: secrets.token_hex(20))
    polls: int = 0
    pending_given: int = 0
    form: dict[str, str] = field(default_factory=dict)


@dataclass
class Req:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    account: str | None = None
    model: str | None = None
    stream: bool = False
    status: int | None = None
    at: float = field(default_factory=time.monotonic)


@dataclass
class _Out:
    status: int
    headers: dict[str, str]
    body: bytes | None = None
    events: list[bytes] | None = None
    faults: list[Any] = field(default_factory=list)
    mid: Callable[[MidStreamError, int], list[bytes]] | None = None


class CopilotMock:
    def __init__(self, *, catalog: list[dict[str, Any]] | None = None, token_ttl: float = 1800.0,
                 refresh_in: float | None = None, api_prefix: str = "/api-individual",
                 exchange_delay: float = 0.0, models_delay: float = 0.0) -> None:
        self.catalog = list(catalog if catalog is not None else DEFAULT_CATALOG)
        self.token_ttl = token_ttl
        self.refresh_in = refresh_in
        self.api_prefix = api_prefix
        self.exchange_delay = exchange_delay
        self.models_delay = models_delay
        self.accounts: dict[str, MockAccount] = {}
        self.devices: deque[DeviceScript] = deque()
        self.device_by_code: dict[str, DeviceScript] = {}
        self.requests: list[Req] = []
        self.errors: list[BaseException] = []
        self.handler: Callable[[Req], Any] | None = None
        self.default: Any = None
        self._queue: deque[Any] = deque()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._abort: asyncio.Event | None = None
        self.port = 0
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ scripting

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return self.root_url + self.api_prefix

    def add_account(self, login: str, **kw: Any) -> MockAccount:
        token = kw.pop("github_token", None) or f"ghu_mock{login}{secrets.token_hex(8)}"
        acct = MockAccount(login=login, github_token=token, user_id=1000 + len(self.accounts), **kw)
        self.accounts[login] = acct
        return acct

    def script_device(self, login: str, **kw: Any) -> DeviceScript:
        d = DeviceScript(login=login, **kw)
        self.devices.append(d)
        return d

    def enqueue(self, *items: Any) -> "CopilotMock":
        self._queue.extend(items)
        return self

    def expire_tokens(self, login: str | None = None) -> None:
        """Server-side expiry of every Copilot token issued so far (mid-session ``token expired``)."""
        for a in self.accounts.values():
            if login is None or a.login == login:
                for t in a.issued:
                    a.issued[t] = 0.0

    def exchanges(self, login: str | None = None) -> int:
        return sum(a.exchanges for a in self.accounts.values() if login is None or a.login == login)

    def calls(self, suffix: str, account: str | None = None) -> list[Req]:
        return [r for r in self.requests if r.path.endswith(suffix) and (account is None or r.account == account)]

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "CopilotMock":
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(256)
        self._sock = sock
        self.port = sock.getsockname()[1]
        cfg = uvicorn.Config(self, lifespan="off", log_config=None, access_log=False, http="h11", loop="asyncio",
                             ws="none", timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(cfg)
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True,
                                        name=f"copilot-mock-{self.port}")
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("copilot mock failed to start")
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
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()
        self._server = None

    def __enter__(self) -> "CopilotMock":
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
        req = Req(method=scope["method"], path=scope["path"], headers=headers, body=body)
        ctype = headers.get("content-type", "")
        if body:
            if "application/x-www-form-urlencoded" in ctype:
                req.form = dict(parse_qsl(body.decode()))
            else:
                try:
                    req.json = json.loads(body)
                except ValueError:
                    req.json = None
        self.requests.append(req)
        try:
            out = await self._respond(req)
        except Exception as exc:  # surfaced to tests
            self.errors.append(exc)
            out = _Out(500, {"content-type": "text/plain"}, body=f"mock error: {exc!r}".encode())
        req.status = out.status
        await self._send(out, send)

    # ------------------------------------------------------------------ routing

    async def _respond(self, req: Req) -> _Out:
        m, p = req.method, req.path.rstrip("/")
        if m == "POST" and p == "/login/device/code":
            return self._device_code(req)
        if m == "POST" and p == "/login/oauth/access_token":
            return self._access_token(req)
        if m == "GET" and p == "/user":
            return self._user(req)
        if m == "GET" and p == "/copilot_internal/v2/token":
            return await self._token(req)
        if m == "GET" and p == "/copilot_internal/user":
            return self._copilot_user(req)
        if p.startswith(self.api_prefix):
            sub = p[len(self.api_prefix):]
            if m == "GET" and sub == "/models":
                if self.models_delay:
                    await self._sleep(self.models_delay)
                return self._models(req)
            if m == "POST" and sub in ("/chat/completions", "/responses"):
                return await self._generate(req, sub)
        return _json(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})

    def _fields(self, req: Req) -> dict[str, Any]:
        if req.form:
            return req.form
        return req.json if isinstance(req.json, dict) else {}

    def _device_code(self, req: Req) -> _Out:
        f = self._fields(req)
        if not f.get("client_id"):
            return _json(400, {"error": "unauthorized_client", "error_description": "client_id is missing"})
        d = self.devices.popleft() if self.devices else DeviceScript(login=next(iter(self.accounts), "octocat"))
        d.form = {k: str(v) for k, v in f.items()}
        self.device_by_code[d.device_code] = d
        return _json(200, {"device_code": d.device_code, "user_code": d.user_code,
                           "verification_uri": "https://github.com/login/device", "expires_in": d.expires_in,
                           "interval": d.interval})

    def _access_token(self, req: Req) -> _Out:
        f = self._fields(req)
        d = self.device_by_code.get(str(f.get("device_code")))
        if d is None:
            return _json(200, {"error": "incorrect_device_code", "error_description": "The device_code provided is not valid."})
        if f.get("grant_type") != "urn:ietf:params:oauth:grant-type:device_code":
            return _json(200, {"error": "unsupported_grant_type", "error_description": "The grant type is not supported."})
        n = d.polls
        d.polls += 1
        if n in d.slow_down:
            d.interval += 5
            return _json(200, {"error": "slow_down", "error_description": "Too many requests have been made in the same timeframe.",
                               "interval": d.interval})
        if d.pending_given < d.pending:
            d.pending_given += 1
            return _json(200, {"error": "authorization_pending",
                               "error_description": "The authorization request is still pending."})
        if d.outcome == "expired":
            return _json(200, {"error": "expired_token", "error_description": "The device_code has expired."})
        if d.outcome == "denied":
            return _json(200, {"error": "access_denied", "error_description": "The authorization request was denied."})
        acct = self.accounts.get(d.login) or self.add_account(d.login)
        return _json(200, {"access_token": acct.github_token, "token_type": "bearer", "scope": "read:user"})

    def _github_account(self, req: Req) -> MockAccount | None:
        auth = req.headers.get("authorization", "")
        scheme, _, tok = auth.partition(" ")
        if scheme.lower() not in ("token", "bearer"):
            return None
        for a in self.accounts.values():
            if a.github_token == tok.strip():
                req.account = a.login
                return a
        return None

    def _bad_credentials(self) -> _Out:
        return _json(401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"})

    def _user(self, req: Req) -> _Out:
        a = self._github_account(req)
        if a is None or a.revoked:
            return self._bad_credentials()
        return _json(200, {"login": a.login, "id": a.user_id, "type": "User", "name": a.login.title()})

    async def _token(self, req: Req) -> _Out:
        if not req.headers.get("editor-version"):
            return _text(400, "bad request: missing Editor-Version header for IDE auth")
        a = self._github_account(req)
        if a is None or a.revoked:
            return self._bad_credentials()
        if not a.copilot_access:
            return _json(403, {"message": "Resource not accessible by integration", "error_details": {
                "notification_id": "no_copilot_access", "title": "No Copilot access",
                "message": "You do not have access to GitHub Copilot.",
                "url": "https://github.com/features/copilot"}, "can_signup_for_limited": True})
        if self.exchange_delay:
            await asyncio.sleep(self.exchange_delay)
        now = time.time()
        exp = now + self.token_ttl
        mac = hashlib.sha256(secrets.token_bytes(16)).hexdigest()
        token = f"tid={secrets.token_hex(16)};exp={int(exp)};sku={a.sku};proxy-ep=proxy.individual.githubcopilot.com;chat=1:{mac}"
        with self._lock:
            a.exchanges += 1
            a.issued[token] = exp
        refresh_in = self.refresh_in if self.refresh_in is not None else max(1, int(self.token_ttl) - 300)
        return _json(200, {
            "token": token, "expires_at": int(exp), "refresh_in": refresh_in, "sku": a.sku, "individual": True,
            "chat_enabled": True, "code_quote_enabled": True,
            "endpoints": {"api": self.api_url, "proxy": "https://proxy.individual.githubcopilot.com",
                          "telemetry": "https://telemetry.individual.githubcopilot.com",
                          "origin-tracker": "https://origin-tracker.individual.githubcopilot.com"},
            "limited_user_quotas": None, "limited_user_reset_date": None,
        })

    def _copilot_user(self, req: Req) -> _Out:
        a = self._github_account(req)
        if a is None or a.revoked:
            return self._bad_credentials()
        return _json(200, {
            "login": a.login, "access_type_sku": a.sku, "copilot_plan": a.plan, "chat_enabled": True,
            "assigned_date": "2025-01-01T00:00:00Z", "quota_reset_date": RESET_DATE[:10],
            "quota_reset_date_utc": RESET_DATE.replace("Z", ".000Z"), "quota_snapshots": a.snapshot(),
        })

    # ------------------------------------------------------------------ Copilot API

    def _copilot_auth(self, req: Req) -> tuple[MockAccount | None, _Out | None]:
        if not req.headers.get("editor-version"):
            return None, _text(400, "bad request: missing Editor-Version header for IDE auth")
        if not req.headers["editor-version"].startswith(KNOWN_EDITORS):
            return None, _text(400, "bad request: unknown Editor-Version header for IDE auth")
        auth = req.headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            return None, _text(401, "unauthorized: missing token")
        tok = auth[7:].strip()
        for a in self.accounts.values():
            exp = a.issued.get(tok)
            if exp is not None:
                req.account = a.login
                if exp <= time.time():
                    return a, _text(401, "unauthorized: token expired")
                return a, None
        return None, _text(401, "unauthorized: token invalid or expired")

    def _model(self, mid: str) -> dict[str, Any] | None:
        return next((m for m in self.catalog if m["id"] == mid), None)

    def _models(self, req: Req) -> _Out:
        _, err = self._copilot_auth(req)
        if err is not None:
            return err
        return _json(200, {"object": "list", "data": self.catalog})

    async def _generate(self, req: Req, endpoint: str) -> _Out:
        acct, err = self._copilot_auth(req)
        if err is not None:
            return err
        assert acct is not None
        body = req.json
        if not isinstance(body, dict):
            return _json(400, {"error": {"message": "invalid JSON body", "code": "invalid_request_body"}})
        req.model = str(body.get("model"))
        req.stream = body.get("stream") is True
        info = self._model(req.model)
        if info is None or info["capabilities"]["type"] != "chat":
            return _json(400, {"error": {"message": "The requested model is not supported.", "code": "model_not_supported",
                                         "param": "model", "type": "invalid_request_error"}})
        if endpoint not in info["supported_endpoints"]:
            return _json(400, {"error": {"message": f'model "{req.model}" is not accessible via the {endpoint} endpoint',
                                         "code": "unsupported_api_for_model"}})
        if endpoint == "/chat/completions":
            verr = _chat.validate(body, strict_params=False, reasoning_prefixes=())
            if verr is None and body.get("service_tier") is not None:
                verr = Error(400, message="service_tier is not supported", code="invalid_request_body")
        else:
            verr = _responses.validate(body, strict_params=False)
            if verr is None and body.get("service_tier") is not None:
                verr = Error(400, message="Unsupported value: 'service_tier'", code="unsupported_value")
        if verr is not None:
            return _json(verr.status, {"error": _chat.error_fields(verr)})
        if _has_images(body):
            if req.headers.get("copilot-vision-request") != "true":
                return _json(400, {"error": {"message": "missing required Copilot-Vision-Request header for vision requests",
                                             "code": "invalid_request_body"}})
            if not info["capabilities"]["supports"].get("vision"):
                return _json(400, {"error": {"message": f"model {req.model} does not support vision",
                                             "code": "invalid_request_body"}})
        # scripted faults for this account come before accounting
        item = None
        if acct.faults:
            item = acct.faults.popleft()
        if item is None and self.handler is not None:
            item = self.handler(req)
            if inspect.isawaitable(item):
                item = await item
        if item == EXPIRE:
            return _text(401, "unauthorized: token expired")
        if item is None:
            item = self._queue.popleft() if self._queue else None
        plan = to_plan(item) if item is not None else Plan()
        if plan.error is not None or plan.raw is not None:
            return self._plan_error(plan)
        premium = info["billing"]["is_premium"]
        initiator = req.headers.get("x-initiator", "user")
        if premium and initiator == "user":
            with self._lock:
                if acct.premium_remaining <= 0:
                    h = {"retry-after": acct.quota_retry_after} if acct.quota_retry_after else {}
                    return _json(402, {"message": "You have no quota", "code": "quota_exceeded"}, h)
                mult = float(info["billing"].get("multiplier") or 1.0)
                acct.premium_remaining -= mult
                acct.premium_used += mult
        reply = plan.reply
        if reply is None:
            d = self.default(req) if callable(self.default) else self.default
            inner = to_plan(d) if d is not None else to_plan(Reply([Text(f"copilot mock reply: {_last_text(body, endpoint)}")]))
            inner.faults = [*inner.faults, *plan.faults]
            plan = inner
            reply = plan.reply
        assert reply is not None
        ctx = Ctx(body=body, model=req.model, stream=req.stream, input_estimate=estimate_tokens(body),
                  request_id=secrets.token_hex(8))
        headers = {"x-request-id": secrets.token_hex(16), "x-github-request-id": secrets.token_hex(8).upper(),
                   "x-quota-snapshot-premium_interactions": acct.premium_header()}
        headers.update(reply.headers)
        if endpoint == "/responses":
            if req.stream:
                headers["content-type"] = "text/event-stream"
                return _Out(200, headers, events=_responses.render_events(reply, ctx), faults=plan.faults,
                            mid=lambda f, i: _responses.mid_stream_error(f, ctx, i))
            headers["content-type"] = "application/json"
            return _Out(200, headers, body=dumps(_responses.render_body(reply, ctx)).encode(), faults=plan.faults)
        if req.stream:
            ctx.body = {**body, "stream_options": {"include_usage": True}}  # Copilot always sends usage
            events = [sse({"choices": [], "created": 0, "id": "", "prompt_filter_results": [
                {"prompt_index": 0, "content_filter_results": {}}]})] + _chat.render_events(reply, ctx)
            headers["content-type"] = "text/event-stream"
            return _Out(200, headers, events=events, faults=plan.faults,
                        mid=lambda f, i: _chat.mid_stream_error(f, ctx, i))
        headers["content-type"] = "application/json"
        return _Out(200, headers, body=dumps(_chat.render_body(reply, ctx)).encode(), faults=plan.faults)

    def _plan_error(self, plan: Plan) -> _Out:
        if plan.raw is not None:
            raw: Raw = plan.raw
            b = raw.body
            data = b if isinstance(b, bytes) else b.encode() if isinstance(b, str) else dumps(b).encode()
            return _Out(raw.status, {"content-type": raw.content_type, **raw.headers}, body=data, faults=plan.faults)
        err = plan.error
        assert err is not None
        headers = dict(err.headers)
        if err.retry_after is not None:
            headers.setdefault("retry-after", str(int(err.retry_after)) if float(err.retry_after).is_integer() else str(err.retry_after))
        if err.body is not None:
            if isinstance(err.body, (bytes, str)):
                data = err.body.encode() if isinstance(err.body, str) else err.body
                return _Out(err.status, {"content-type": "text/plain; charset=utf-8", **headers}, body=data)
            return _json(err.status, err.body, headers)
        if err.status == 429:
            headers.setdefault("x-ratelimit-exceeded", "global-chat")
            return _json(429, {"error": {"message": err.message or "Sorry, you have been rate-limited. Please wait a moment before trying again.",
                                         "code": err.code or "rate_limited", "type": "rate_limit_error"}}, headers)
        if err.status == 402:
            return _json(402, {"message": err.message or "You have no quota", "code": err.code or "quota_exceeded"}, headers)
        if err.status == 503:
            return _Out(503, {"content-type": "text/plain; charset=utf-8", **headers},
                        body=(err.message or "upstream provider rate limit").encode())
        return _json(err.status, {"error": {"message": err.message or "error", "code": err.code}}, headers)

    # ------------------------------------------------------------------ sending

    async def _sleep(self, seconds: float) -> bool:
        assert self._abort is not None
        try:
            await asyncio.wait_for(self._abort.wait(), seconds)
            return False
        except asyncio.TimeoutError:
            return True

    async def _send(self, out: _Out, send: Any) -> None:
        faults = out.faults
        delay = sum(f.first_byte_seconds for f in faults if isinstance(f, Delay))
        if delay and not await self._sleep(delay):
            return
        drop = next((f for f in faults if isinstance(f, DropAfter)), None)
        mid = next((f for f in faults if isinstance(f, MidStreamError)), None)
        stalls = [f for f in faults if isinstance(f, Stall)]
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in out.headers.items()]
        if out.events is None:
            data = out.body or b""
            headers.append((b"content-length", str(len(data)).encode()))
            await send({"type": "http.response.start", "status": out.status, "headers": headers})
            for s in stalls:
                if not await self._sleep(s.seconds):
                    return
            if drop is not None:
                await send({"type": "http.response.body", "body": data[: len(data) // 2], "more_body": True})
                return
            await send({"type": "http.response.body", "body": data, "more_body": False})
            return
        events = out.events
        await send({"type": "http.response.start", "status": out.status, "headers": headers})
        for i in range(len(events) + 1):
            for s in stalls:
                if s.after_events == i and not await self._sleep(s.seconds):
                    return
            if mid is not None and out.mid is not None and i == min(mid.after_events, len(events) - 1):
                for ev in out.mid(mid, i):
                    await send({"type": "http.response.body", "body": ev, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            if drop is not None and i == min(drop.n_events, len(events) - 1):
                if not drop.abrupt:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            if i == len(events):
                break
            await send({"type": "http.response.body", "body": events[i], "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _json(status: int, data: Any, headers: dict[str, str] | None = None) -> _Out:
    return _Out(status, {"content-type": "application/json; charset=utf-8", **(headers or {})}, body=dumps(data).encode())


def _text(status: int, text: str) -> _Out:
    return _Out(status, {"content-type": "text/plain; charset=utf-8"}, body=text.encode())


def _has_images(body: dict[str, Any]) -> bool:
    for m in body.get("messages") or body.get("input") or []:
        c = m.get("content") if isinstance(m, dict) else None
        if isinstance(c, list) and any(isinstance(p, dict) and p.get("type") in ("image_url", "input_image") for p in c):
            return True
    return False


def _last_text(body: dict[str, Any], endpoint: str) -> str:
    if endpoint == "/responses":
        return _responses.last_user_text(body)
    return _chat.last_user_text(body)


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

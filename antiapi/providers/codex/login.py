"""``antiapi login codex``: sign in to a ChatGPT account for the Codex provider.

Three ways, each an object the admin API can drive (``start()`` then ``wait()`` / ``complete()``):

* :class:`BrowserSignIn`  authorization code + PKCE; a loopback listener on port 1455 (else 1457)
  receives ``http://localhost:<port>/auth/callback``.
* :class:`BrowserSignIn` with ``listen=False`` (``--paste``): print the URL; the user pastes the
  address the browser was sent to (it fails to load on a machine without the listener).
* :class:`DeviceSignIn` (``--device``): a code to enter at auth.openai.com/codex/device.

The account label is the email of the id_token; credentials go to the CredentialStore (0600).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from antiapi.providers.http import httpx

from antiapi.accounts import CredentialStore
from antiapi.errors import ConfigError, GatewayError
from antiapi.providers import http as _http
from antiapi.providers.codex import oauth
from antiapi.providers.codex.callback import CallbackServer
from antiapi.providers.codex.oauth import CALLBACK_PATH, CALLBACK_PORTS, Endpoints, SignInError, TokenSet

ENV_REDIRECT = "ANTI_API_OAUTH_REDIRECT_URL"
ENV_NO_OPEN = "ANTI_API_OAUTH_NO_OPEN"
ENV_INSECURE = "ANTI_API_CODEX_INSECURE_TLS"


def _truthy(v: Any) -> bool:
    return str(v).strip().lower() in ("1", "true", "yes", "on")


@dataclass
class LoginSettings:
    data_dir: Path
    endpoints: Endpoints = field(default_factory=Endpoints)
    verify_tls: bool = True
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: Any, provider: str | None = None) -> "LoginSettings":
        """Endpoints and TLS from the config's codex entry (``provider`` names it; default: the
        first codex entry), env switches from ``cfg.env_settings``."""
        env = dict(getattr(cfg, "env_settings", {}) or {})
        pc = None
        providers = getattr(cfg, "providers", {}) or {}
        if provider is not None:
            pc = providers.get(provider)
            if pc is None or pc.type != "codex":
                codex = [n for n, p in providers.items() if p.type == "codex"]
                raise SignInError(
                    f"the config has no codex provider named '{provider}'"
                    + (f"; codex providers: {', '.join(codex)}" if codex else ""),
                    permanent=True,
                )
        else:
            pc = next((p for p in providers.values() if p.type == "codex"), None)
        verify = True
        endpoints = Endpoints()
        if pc is not None:
            endpoints = Endpoints.resolve(pc.endpoints, pc.base_url)
            verify = bool(pc.verify_tls)
        if _truthy(env.get(ENV_INSECURE, "")):
            verify = False
        return cls(data_dir=Path(cfg.data_dir), endpoints=endpoints, verify_tls=verify, env=env)

    def client(self) -> httpx.AsyncClient:
        return _http.build_client(timeouts=_http.Timeouts(connect=15, first_byte=60, idle=60), verify=self.verify_tls)


def save_account(settings: LoginSettings, ts: TokenSet) -> Path:
    """Store the account's tokens (label = email). A re-login replaces the old file."""
    return CredentialStore(settings.data_dir).save("codex", ts.label, ts.to_record())


class _Flow:
    method = ""

    def __init__(self, settings: LoginSettings, *, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self._client = client
        self._own_client = client is None
        self.tokens: TokenSet | None = None
        self.saved_to: Path | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = self.settings.client()
        return self._client

    async def _store(self, ts: TokenSet) -> str:
        self.tokens = ts
        self.saved_to = save_account(self.settings, ts)
        return ts.label

    async def aclose(self) -> None:
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None


class BrowserSignIn(_Flow):
    """Authorization code + PKCE. ``start()`` -> ``{"method", "url", "redirect_uri", "port"}``;
    then ``wait()`` (listener) or ``complete(pasted_url)`` (paste) -> the account label."""

    method = "browser"

    def __init__(
        self,
        settings: LoginSettings,
        *,
        listen: bool = True,
        port: int | None = None,
        bind: str = "127.0.0.1",
        redirect_url: str | None = None,
        on_refused=None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(settings, client=client)
        self.listen = listen
        self.port = port
        self.bind = bind
        self.redirect_override = redirect_url if redirect_url is not None else (settings.env.get(ENV_REDIRECT) or None)
        self.on_refused = on_refused
        self.pkce = oauth.new_pkce()
        self.state = oauth.new_state()
        self.server: CallbackServer | None = None
        self.redirect_uri = ""
        self.url = ""
        self._used = False
        if not listen:
            self.method = "paste"

    def _ports_and_path(self) -> tuple[tuple[int, ...], str]:
        path = CALLBACK_PATH
        ports: tuple[int, ...] = CALLBACK_PORTS
        if self.redirect_override:
            u = urlsplit(self.redirect_override)
            path = u.path or CALLBACK_PATH
            if u.port and u.hostname in ("localhost", "127.0.0.1", "::1"):
                ports = (u.port,)
        if self.port is not None:
            ports = (self.port,)
        return ports, path

    async def start(self) -> dict[str, Any]:
        ports, path = self._ports_and_path()
        port: int | None = None
        if self.listen:
            self.server = CallbackServer(expected_state=self.state, path=path, host=self.bind, ports=ports,
                                         on_refused=self.on_refused)
            port = await self.server.start()
        if self.redirect_override:
            self.redirect_uri = self.redirect_override
        else:
            self.redirect_uri = oauth.redirect_uri_for(port if port is not None else ports[0], path)
        self.url = oauth.authorize_url(self.settings.endpoints, redirect_uri=self.redirect_uri, pkce=self.pkce,
                                       state=self.state)
        return {"method": self.method, "url": self.url, "redirect_uri": self.redirect_uri, "port": port}

    async def _exchange(self, code: str) -> str:
        ts = await oauth.exchange_code(self.client, self.settings.endpoints, code=code,
                                       redirect_uri=self.redirect_uri, verifier=self.pkce.verifier)
        return await self._store(ts)

    async def wait(self, timeout: float = 900.0) -> str:
        """Wait for the browser's callback, exchange the code, save; returns the account label."""
        if self.server is None:
            raise SignInError("this sign-in does not listen for a callback; use complete(pasted_url)", permanent=True)
        try:
            code = await self.server.wait_code(timeout)
            try:
                label = await self._exchange(code)
            except GatewayError as e:
                self.server.finish(False, f"Sign-in failed: {e.message}")
                raise
            self.server.finish(True, f"Signed in to antiapi as {label}.")
            await asyncio.sleep(0.05)  # let the browser's page go out before closing
            return label
        finally:
            await self.server.close()
            await self.aclose()

    async def complete(self, pasted: str) -> str:
        """The paste path: the redirect URL the browser was sent to -> the account label."""
        cb = oauth.parse_callback(pasted)
        if cb.state != self.state:
            raise SignInError(
                "refused: the pasted URL's state does not match this sign-in (State mismatch). Paste the address "
                "the browser was sent to after signing in with the link printed by this command.",
                code="state_mismatch",
            )
        if self._used:
            raise SignInError("refused: this sign-in link was already used (a replayed callback)", code="replayed_state")
        self._used = True
        if cb.error:
            raise SignInError(f"the sign-in server reported an error: {cb.error_description or cb.error}", code=cb.error)
        if not cb.code:
            raise SignInError("the pasted URL carries no code=…; copy the whole address from the browser", code="no_code")
        try:
            return await self._exchange(cb.code)
        finally:
            await self.aclose()

    async def cancel(self) -> None:
        if self.server is not None:
            await self.server.close()
        await self.aclose()


class DeviceSignIn(_Flow):
    """Device code. ``start()`` -> ``{"method", "user_code", "verification_uri", "interval",
    "expires_in"}``; ``wait()`` polls until approved -> the account label."""

    method = "device"

    def __init__(self, settings: LoginSettings, *, client: httpx.AsyncClient | None = None) -> None:
        super().__init__(settings, client=client)
        self.code: oauth.DeviceCode | None = None
        self.polls = 0

    async def start(self) -> dict[str, Any]:
        self.code = await oauth.request_device_code(self.client, self.settings.endpoints)
        return {
            "method": self.method,
            "user_code": self.code.user_code,
            "verification_uri": self.code.verification_uri,
            "interval": self.code.interval,
            "expires_in": self.code.expires_in,
        }

    async def wait(self, timeout: float = 900.0) -> str:
        assert self.code is not None, "start() first"
        deadline = time.monotonic() + min(timeout, self.code.expires_in)
        try:
            while True:
                self.polls += 1
                got = await oauth.poll_device_code(self.client, self.settings.endpoints, self.code)
                if got is not None:
                    code, verifier = got
                    ts = await oauth.exchange_code(self.client, self.settings.endpoints, code=code,
                                                   redirect_uri=self.settings.endpoints.device_redirect_uri,
                                                   verifier=verifier)
                    return await self._store(ts)
                if time.monotonic() + self.code.interval > deadline:
                    raise SignInError("the device code expired before the sign-in was approved; run the command again",
                                      code="expired", permanent=True)
                await asyncio.sleep(self.code.interval)
        finally:
            await self.aclose()

    async def cancel(self) -> None:
        await self.aclose()


# ---------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="antiapi login codex",
        description="Sign in to a ChatGPT account for the Codex provider. The account's own terms and usage limits apply.",
    )
    how = p.add_mutually_exclusive_group()
    how.add_argument("--device", action="store_true", help="sign in with a code on another device (SSH, no browser here)")
    how.add_argument("--paste", action="store_true",
                     help="print the sign-in URL and read back the address the browser was sent to (last resort)")
    p.add_argument("--port", type=int, default=None,
                   help="port for the local callback listener (default 1455, then 1457; 0 = any free port)")
    p.add_argument("--bind", default="127.0.0.1",
                   help="address the callback listener binds (0.0.0.0 inside Docker with the port published)")
    p.add_argument("--no-browser", action="store_true", help=f"print the URL instead of opening a browser ({ENV_NO_OPEN}=1)")
    p.add_argument("--provider", default=None, help="the codex entry of the config whose endpoints to use")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the sign-in (default 900)")
    return p


def _out(*lines: str) -> None:
    print("\n".join(lines), flush=True)


def _err(msg: str) -> None:
    print(f"antiapi: {msg}", file=sys.stderr, flush=True)


def _done(flow: _Flow, label: str) -> None:
    ts = flow.tokens
    plan = f" ({ts.plan} plan)" if ts is not None and ts.plan else ""
    _out(
        f"Signed in as {label}{plan}.",
        f"Credentials saved to {flow.saved_to} (readable by you only).",
        "A running antiapi picks up a renewed sign-in at once; restart `antiapi serve` to add a new account.",
        "The account's own terms and usage limits apply to everything sent through it.",
    )


async def _run(args: argparse.Namespace, settings: LoginSettings) -> int:
    if settings.endpoints.auth_base != oauth.AUTH_BASE:
        _out(f"Using the sign-in server {settings.endpoints.auth_base} (from the config).")
    if not settings.verify_tls:
        _err("WARNING: TLS certificate verification is OFF for this sign-in; your tokens can be intercepted.")
    if args.device:
        flow: _Flow = DeviceSignIn(settings)
        info = await flow.start()
        _out(
            "To sign in, open this page on any device with a browser:",
            f"    {info['verification_uri']}",
            "and enter the code:",
            f"    {info['user_code']}",
            "(the code expires in 15 minutes). Waiting for the sign-in…",
        )
        label = await flow.wait(args.timeout)
        _done(flow, label)
        return 0

    if args.paste:
        flow = BrowserSignIn(settings, listen=False, port=args.port)
        info = await flow.start()
        _out(
            "1. Open this URL in a browser (on any machine) and sign in:",
            f"    {info['url']}",
            f"2. The browser is then sent to {info['redirect_uri']}?code=… and shows a connection error",
            "   (nothing listens there). Copy that whole address from the address bar and paste it here.",
        )
        print("Redirect URL: ", end="", flush=True)
        line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        if not line.strip():
            _err("sign-in cancelled: nothing was pasted")
            return 1
        label = await flow.complete(line)
        _done(flow, label)
        return 0

    flow = BrowserSignIn(settings, port=args.port, bind=args.bind, on_refused=lambda m: _err(m))
    info = await flow.start()
    no_open = args.no_browser or _truthy(settings.env.get(ENV_NO_OPEN, ""))
    opened = False
    if not no_open:
        import webbrowser

        with contextlib.suppress(Exception):
            opened = webbrowser.open(info["url"])
    if opened:
        _out("A browser window opened for the ChatGPT sign-in. If it did not, open this URL:", f"    {info['url']}")
    else:
        _out("Open this URL in a browser on this machine to sign in:", f"    {info['url']}")
    _out(
        f"Waiting for the sign-in on {info['redirect_uri']} (Ctrl-C to cancel).",
        "Over SSH? Run `antiapi login codex --device`, or forward the port: ssh -L 1455:localhost:1455 <host>.",
    )
    label = await flow.wait(args.timeout)
    _done(flow, label)
    return 0


def main(argv: list[str], cfg: Any) -> int:
    """``antiapi login codex [--device | --paste] [--port N] [--bind HOST] [--provider NAME]``."""
    args = _parser().parse_args(list(argv))
    try:
        settings = LoginSettings.from_config(cfg, args.provider)
        return asyncio.run(_run(args, settings))
    except KeyboardInterrupt:
        _err("sign-in cancelled")
        return 130
    except GatewayError as e:
        _err(f"sign-in failed: {e.message}")
        return 1
    except ConfigError as e:
        _err(f"sign-in failed: {e}")
        return 2

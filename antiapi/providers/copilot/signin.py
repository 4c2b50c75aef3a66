"""GitHub device-flow sign-in for Copilot as an object a CLI or the admin API can drive.

::

    flow = DeviceSignIn(settings, CredentialStore(data_dir))
    info = await flow.start()        # {"user_code", "verification_uri", "expires_in", "interval"}
    label = await flow.wait()        # or call ``await flow.poll()`` now and then: label or None
    await flow.aclose()

Nothing is opened on this machine: the user visits the URL on any device (works over SSH and in
containers). On success the GitHub token is saved (0600, atomically) under the account's GitHub
login; several accounts live side by side.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from antiapi.providers.http import httpx
import msgspec

from antiapi.accounts import CredentialStore
from antiapi.errors import NeedsSignIn, ProviderError, UpstreamHTTPError
from antiapi.providers import http as _http
from antiapi.providers.copilot.device import DeviceCode, DeviceFlowState, Failed, Granted, Pending
from antiapi.providers.copilot.settings import SCOPE, CopilotSettings
from antiapi.providers.copilot.token import get_json, github_error_parser

log = logging.getLogger("antiapi.providers.copilot")

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"


class SignInFailed(Exception):
    """The sign-in ended without an account. ``reason``: expired | denied | no_copilot | error."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class _Answer(ProviderError):
    """A non-2xx answer of GitHub's OAuth endpoints, with its body (they put errors in JSON)."""

    def __init__(self, status: int, data: Any, text: str) -> None:
        super().__init__(f"HTTP {status}: {text[:200]}", status=502)
        self.http_status = status
        self.data = data


def _oauth_answer(status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
    try:
        data = msgspec.json.decode(body) if body else None
    except msgspec.DecodeError:
        data = None
    return _Answer(status, data, body.decode("utf-8", errors="replace"))


class DeviceSignIn:
    def __init__(
        self,
        settings: CopilotSettings,
        store: CredentialStore,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        timeout: float = 30.0,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.sleep = sleep
        self.timeout = timeout
        self.client = _http.build_client(
            timeouts=_http.Timeouts(connect=min(10.0, timeout), first_byte=timeout, idle=timeout),
            verify=settings.verify_tls, transport=transport,
        )
        self.state: DeviceFlowState | None = None
        #: "new" -> "pending" -> "done" | "failed"
        self.status = "new"
        self.label: str | None = None
        self.login: str | None = None
        self.plan: str | None = None
        self.error: SignInFailed | None = None
        self.warnings: list[str] = []
        #: seconds the flow waited before each poll (tests; the admin API may show it)
        self.waits: list[float] = []

    def __repr__(self) -> str:
        return f"DeviceSignIn(status={self.status!r}, label={self.label!r})"

    # ------------------------------------------------------------------ steps

    async def _post_form(self, url: str, fields: dict[str, str]) -> Any:
        headers = {"accept": "application/json", "content-type": "application/x-www-form-urlencoded"}
        resp = await _http.send(self.client, provider=self.settings.name, method="POST", url=url, headers=headers,
                                body=urlencode(fields).encode(), first_byte_timeout=self.timeout,
                                parse_error=_oauth_answer)
        try:
            raw = await resp.aread()
        finally:
            await resp.aclose()
        try:
            return msgspec.json.decode(raw) if raw else None
        except msgspec.DecodeError:
            # some proxies answer form-encoded
            from urllib.parse import parse_qsl

            return dict(parse_qsl(raw.decode("utf-8", errors="replace")))

    async def start(self) -> dict[str, Any]:
        """Ask GitHub for a device code. Returns what to show the user."""
        s = self.settings
        try:
            data = await self._post_form(s.endpoints.device_code, {"client_id": s.client_id, "scope": SCOPE})
        except _Answer as e:
            data = e.data
            desc = (data.get("error_description") or data.get("error")) if isinstance(data, dict) else None
            self._fail("error", f"GitHub refused to start the sign-in ({desc or e.message}).")
        except ProviderError as e:
            self._fail("error", f"Cannot reach GitHub to start the sign-in: {e.message}")
        try:
            code = DeviceCode.from_json(data)
        except ValueError as e:
            self._fail("error", str(e))
        self.state = DeviceFlowState(code, self.clock())
        self.status = "pending"
        return {
            "user_code": code.user_code,
            "verification_uri": code.verification_uri,
            "expires_in": int(code.expires_in),
            "interval": code.interval,
        }

    def _fail(self, reason: str, message: str) -> None:
        self.status = "failed"
        self.error = SignInFailed(reason, message)
        raise self.error

    async def poll(self) -> str | None:
        """Poll once if the interval allows: the account label once signed in, else None.
        Raises SignInFailed when the code expired, was denied, or the account has no Copilot."""
        if self.status == "done":
            return self.label
        if self.status == "failed" and self.error is not None:
            raise self.error
        st = self.state
        if st is None:
            raise RuntimeError("call start() first")
        now = self.clock()
        expired = st.check_expiry(now)
        if expired is not None:
            self._fail(expired.reason, expired.message)
        if st.wait_before_poll(now) > 0:
            return None
        s = self.settings
        fields = {"client_id": s.client_id, "device_code": st.code.device_code, "grant_type": GRANT_TYPE}
        try:
            data = await self._post_form(s.endpoints.access_token, fields)
        except _Answer as e:
            data = e.data if isinstance(e.data, dict) else {}
            if not data.get("error"):
                if e.http_status >= 500 or e.http_status == 429:
                    st.on_response({"error": "authorization_pending"}, self.clock())
                    return None  # a hiccup: poll again at the interval
                self._fail("error", f"GitHub answered the sign-in poll with {e.message}")
        except ProviderError as e:
            log.info("sign-in poll failed (%s); polling again", e.message)
            st.on_response({"error": "authorization_pending"}, self.clock())
            return None
        out = st.on_response(data, self.clock())
        if isinstance(out, Pending):
            return None
        if isinstance(out, Failed):
            self._fail(out.reason, out.message)
        assert isinstance(out, Granted)
        return await self._finish(out.access_token, out.scope)

    async def wait(self) -> str:
        """Poll at the server's interval until signed in (label) or failed (SignInFailed)."""
        while True:
            st = self.state
            if st is None:
                raise RuntimeError("call start() first")
            delay = st.wait_before_poll(self.clock())
            if delay > 0:
                self.waits.append(delay)
                await self.sleep(min(delay, max(0.0, st.expires_at - self.clock()) + 0.01))
            label = await self.poll()
            if label is not None:
                return label

    async def _finish(self, github_token: str, scope: str) -> str:
        s = self.settings
        headers = s.github_headers(github_token)
        try:
            user = await get_json(self.client, s.endpoints.user, headers, provider=s.name, timeout=self.timeout,
                                  parse_error=github_error_parser(s.name, None, what="reading the GitHub user"))
        except ProviderError as e:
            self._fail("error", f"Signed in, but reading the GitHub account failed: {e.message}")
        login = user.get("login") if isinstance(user, dict) else None
        if not isinstance(login, str) or not login:
            self._fail("error", "Signed in, but GitHub did not say which account this is (GET /user has no login).")
        self.login = login
        # Does this account have Copilot? (A token exchange tells; no point saving it otherwise.)
        try:
            env = await get_json(self.client, s.endpoints.token, headers, provider=s.name, timeout=self.timeout,
                                 parse_error=github_error_parser(s.name, login, what="checking Copilot access"))
            self.plan = env.get("sku") if isinstance(env, dict) and isinstance(env.get("sku"), str) else None
        except NeedsSignIn as e:
            self._fail("error", e.message)
        except UpstreamHTTPError as e:
            if e.status == 403:  # no_copilot_access, not_signed_up, subscription_ended, 404, ...
                self._fail("no_copilot", f"Signed in to GitHub as {login}, but {e.message.split(': ', 1)[-1]}")
            self.warnings.append(f"could not check Copilot access now ({e.message}); saved the sign-in anyway")
        except ProviderError as e:
            self.warnings.append(f"could not check Copilot access now ({e.message}); saved the sign-in anyway")
        label = f"{login}@{s.domain}" if s.domain else login
        self.store.save("copilot", label, {
            "github_token": github_token,
            "login": login,
            "user_id": user.get("id") if isinstance(user.get("id"), int) else None,
            "scope": scope,
            "client_id": s.client_id,
            "github": s.endpoints.github,
            "plan": self.plan,
            "signed_in_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        })
        self.label = label
        self.status = "done"
        return label

    async def aclose(self) -> None:
        await self.client.aclose()

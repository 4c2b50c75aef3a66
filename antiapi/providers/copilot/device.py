"""The GitHub OAuth device flow as a pure state machine (no I/O, time passed in).

GitHub answers every poll with HTTP 200 and a JSON body: ``authorization_pending`` (keep polling at
the interval), ``slow_down`` (add 5 s to the interval, or use the ``interval`` it sends),
``expired_token`` / ``access_denied`` (stop), or the ``access_token``. RFC 8628 servers (GitHub
Enterprise behind proxies) may send the same errors with HTTP 400; the body decides either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: GitHub's default poll interval when the device-code answer gives none (seconds)
DEFAULT_INTERVAL = 5.0
DEFAULT_EXPIRES_IN = 900.0
SLOW_DOWN_STEP = 5.0


@dataclass(frozen=True)
class DeviceCode:
    """GitHub's answer to ``POST /login/device/code``."""

    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    expires_in: float
    interval: float

    @classmethod
    def from_json(cls, data: Any) -> "DeviceCode":
        if not isinstance(data, dict):
            raise ValueError("the device-code answer is not a JSON object")
        if data.get("error"):
            desc = data.get("error_description") or data["error"]
            raise ValueError(f"GitHub refused to start the sign-in: {desc}")
        missing = [k for k in ("device_code", "user_code", "verification_uri") if not isinstance(data.get(k), str) or not data.get(k)]
        if missing:
            raise ValueError(f"the device-code answer lacks {', '.join(missing)}")
        return cls(
            device_code=data["device_code"],
            user_code=data["user_code"],
            verification_uri=data["verification_uri"],
            expires_in=_pos(data.get("expires_in"), DEFAULT_EXPIRES_IN),
            interval=_pos(data.get("interval"), DEFAULT_INTERVAL, allow_zero=True),
        )


def _pos(v: Any, default: float, allow_zero: bool = False) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return default
    if f < 0 or (f == 0 and not allow_zero):
        return default
    return f


# ---------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class Pending:
    """Keep waiting; poll again after ``wait`` seconds."""

    wait: float
    slowed_down: bool = False


@dataclass(frozen=True)
class Granted:
    access_token: str = field(repr=False)
    token_type: str = "bearer"
    scope: str = ""


@dataclass(frozen=True)
class Failed:
    """The flow is over without a token. ``reason``: expired | denied | error."""

    reason: str
    message: str


Outcome = Pending | Granted | Failed

_AGAIN = "Run `antiapi login copilot` again to get a new code."


class DeviceFlowState:
    """When to poll next and what each answer means. ``now`` is any monotonic-ish clock in seconds."""

    def __init__(self, code: DeviceCode, started_at: float) -> None:
        self.code = code
        self.interval = code.interval
        self.started_at = started_at
        self.expires_at = started_at + code.expires_in
        self.next_poll_at = started_at + self.interval
        self.polls = 0
        self.result: Outcome | None = None

    @property
    def done(self) -> bool:
        return isinstance(self.result, (Granted, Failed))

    def wait_before_poll(self, now: float) -> float:
        return max(0.0, self.next_poll_at - now)

    def expired(self, now: float) -> bool:
        return now >= self.expires_at

    def check_expiry(self, now: float) -> Failed | None:
        if self.done:
            return self.result if isinstance(self.result, Failed) else None
        if self.expired(now):
            self.result = Failed("expired", f"The code {self.code.user_code} expired before it was approved. {_AGAIN}")
            return self.result
        return None

    def on_response(self, data: Any, now: float) -> Outcome:
        """Feed one poll answer (decoded JSON body, any status)."""
        self.polls += 1
        out = self._classify(data, now)
        self.result = out
        return out

    def _classify(self, data: Any, now: float) -> Outcome:
        if not isinstance(data, dict):
            return self._pending(now)  # a garbled answer: treat as pending, the expiry bounds it
        token = data.get("access_token")
        if isinstance(token, str) and token:
            return Granted(token, str(data.get("token_type") or "bearer"), str(data.get("scope") or ""))
        err = data.get("error")
        desc = data.get("error_description")
        if err == "authorization_pending":
            return self._pending(now)
        if err == "slow_down":
            new = _pos(data.get("interval"), 0.0)
            self.interval = max(self.interval + SLOW_DOWN_STEP, new)
            return self._pending(now, slowed=True)
        if err == "expired_token":
            return Failed("expired", f"The code {self.code.user_code} expired before it was approved. {_AGAIN}")
        if err == "access_denied":
            return Failed("denied", f"The sign-in was denied on GitHub (code {self.code.user_code}). {_AGAIN}")
        if isinstance(err, str) and err:
            return Failed("error", f"GitHub ended the sign-in: {desc or err}. {_AGAIN}")
        return self._pending(now)

    def _pending(self, now: float, slowed: bool = False) -> Outcome:
        if self.expired(now):
            return Failed("expired", f"The code {self.code.user_code} expired before it was approved. {_AGAIN}")
        self.next_poll_at = now + self.interval
        return Pending(self.interval, slowed)

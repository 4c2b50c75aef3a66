"""The one exception tree of antiapi (pure: imports only the standard library).

    AntiapiError
    ├── ConfigError                 config file unreadable or invalid (names file, key, problem)
    └── GatewayError                anything that ends a client request with an error
        ├── InvalidRequest          the client's request is wrong (400/404/413): never retried
        │   ├── ModelNotFound       no route serves the requested model (400, lists what exists)
        │   └── Unsupported         the chosen model cannot serve what was asked (400)
        └── ProviderError           the upstream failed or refused
            ├── UpstreamHTTPError   the upstream answered with an error status
            │   └── LimitReached    an account's usage limit / quota is used up (fail over)
            ├── NeedsSignIn         the account's credentials are revoked or expired for good
            ├── UpstreamTimeout     connect / first byte / idle timeout
            ├── UpstreamUnavailable connection refused, DNS, TLS, reset before any byte
            └── StreamInterrupted   the upstream stream ended before its terminal event

Every ``GatewayError`` carries a :class:`ErrorKind` (the dialect-neutral category), an HTTP
``status``, a human ``message``, optional ``code``/``param`` and, for limits, ``retry_after``
seconds. ``antiapi.translate.<dialect>.render_error`` turns one into the client's wire format;
nothing else builds error bodies.
"""

from __future__ import annotations

import enum


class ErrorKind(str, enum.Enum):
    """Dialect-neutral error categories (translation.md §7.2)."""

    INVALID_REQUEST = "invalid_request"
    AUTHENTICATION = "authentication"
    PERMISSION = "permission"
    NOT_FOUND = "not_found"
    REQUEST_TOO_LARGE = "request_too_large"
    RATE_LIMIT = "rate_limit"
    BILLING = "billing"  # quota exhausted / insufficient_quota: not transient
    TIMEOUT = "timeout"
    OVERLOADED = "overloaded"
    API_ERROR = "api_error"  # upstream 5xx or a failure inside the gateway


#: Default HTTP status for each kind, used when no upstream status is known.
KIND_STATUS: dict[ErrorKind, int] = {
    ErrorKind.INVALID_REQUEST: 400,
    ErrorKind.AUTHENTICATION: 401,
    ErrorKind.BILLING: 402,
    ErrorKind.PERMISSION: 403,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.REQUEST_TOO_LARGE: 413,
    ErrorKind.RATE_LIMIT: 429,
    ErrorKind.API_ERROR: 502,
    ErrorKind.OVERLOADED: 503,
    ErrorKind.TIMEOUT: 504,
}


def kind_for_status(status: int) -> ErrorKind:
    """Best category for a bare HTTP status."""
    if status == 400 or status == 422:
        return ErrorKind.INVALID_REQUEST
    if status == 401:
        return ErrorKind.AUTHENTICATION
    if status == 402:
        return ErrorKind.BILLING
    if status == 403:
        return ErrorKind.PERMISSION
    if status == 404:
        return ErrorKind.NOT_FOUND
    if status == 413:
        return ErrorKind.REQUEST_TOO_LARGE
    if status == 429:
        return ErrorKind.RATE_LIMIT
    if status in (408, 504):
        return ErrorKind.TIMEOUT
    if status in (503, 529):
        return ErrorKind.OVERLOADED
    if 400 <= status < 500:
        return ErrorKind.INVALID_REQUEST
    return ErrorKind.API_ERROR


class AntiapiError(Exception):
    """Base of every error antiapi raises on purpose."""


class ConfigError(AntiapiError):
    """The configuration cannot be used. The message names the file, the key and the fix."""

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None) -> None:
        self.path = path
        self.key = key
        where = ""
        if path:
            where = f"{path}: "
        if key:
            where += f"{key}: "
        super().__init__(f"{where}{message}")


class GatewayError(AntiapiError):
    """An error that ends one client request; rendered in the client's own wire format."""

    kind: ErrorKind = ErrorKind.API_ERROR

    def __init__(
        self,
        message: str,
        *,
        kind: ErrorKind | None = None,
        status: int | None = None,
        code: str | None = None,
        param: str | None = None,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if kind is not None:
            self.kind = kind
        self.status = status if status is not None else KIND_STATUS[self.kind]
        self.code = code
        self.param = param
        self.retry_after = retry_after
        self.headers = dict(headers or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.kind.value}, {self.message!r})"


class InvalidRequest(GatewayError):
    """The client sent something wrong; the message says what to change."""

    kind = ErrorKind.INVALID_REQUEST


class ModelNotFound(InvalidRequest):
    kind = ErrorKind.NOT_FOUND

    def __init__(self, model: str, known: list[str]) -> None:
        listing = ", ".join(known[:40]) if known else "none are configured"
        more = f" (and {len(known) - 40} more)" if len(known) > 40 else ""
        super().__init__(
            f"The model '{model}' is not served here. Models available: {listing}{more}. "
            "Add it to the config file's model_list or ask for one of these.",
            status=404,
            code="model_not_found",
            param="model",
        )
        self.model = model


class Unsupported(InvalidRequest):
    """The chosen model cannot serve a feature the request uses (images, tools, thinking)."""


class ProviderError(GatewayError):
    """The upstream failed or refused. ``retryable`` tells the router it may try elsewhere."""

    retryable: bool = False

    def __init__(self, message: str, *, provider: str | None = None, request_id: str | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.provider = provider
        self.request_id = request_id


class UpstreamHTTPError(ProviderError):
    """The upstream answered with an error status; ``kind`` and ``status`` mirror it."""

    def __init__(self, message: str, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retryable = self.kind in (
            ErrorKind.RATE_LIMIT,
            ErrorKind.OVERLOADED,
            ErrorKind.API_ERROR,
            ErrorKind.TIMEOUT,
        )


class UpstreamTimeout(ProviderError):
    kind = ErrorKind.TIMEOUT
    retryable = True


class UpstreamUnavailable(ProviderError):
    kind = ErrorKind.API_ERROR
    retryable = True


class StreamInterrupted(ProviderError):
    """The upstream stream ended (or broke) before its terminal event."""

    kind = ErrorKind.API_ERROR


class LimitReached(UpstreamHTTPError):
    """The account hit its plan's usage limit or quota (Codex ``usage_limit_reached``, Copilot
    402 ``quota_exceeded``). Retryable elsewhere; ``resets_at`` (epoch seconds) when known."""

    def __init__(self, message: str, *, resets_at: float | None = None, **kw: object) -> None:
        kw.setdefault("kind", ErrorKind.RATE_LIMIT)  # type: ignore[arg-type]
        kw.setdefault("status", 429)  # type: ignore[arg-type]
        super().__init__(message, **kw)
        self.resets_at = resets_at
        self.retryable = True


class NeedsSignIn(ProviderError):
    """The account must be signed in again (revoked refresh token, expired GitHub token)."""

    kind = ErrorKind.AUTHENTICATION
    retryable = True  # another account may serve the request

    def __init__(self, message: str, *, account: str | None = None, **kw: object) -> None:
        kw.setdefault("status", 401)  # type: ignore[arg-type]
        super().__init__(message, **kw)
        self.account = account

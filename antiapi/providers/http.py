"""The one place that builds httpx clients and maps httpx failures into ``antiapi.errors``.

Timeouts: ``connect`` (TCP+TLS), ``first_byte`` (request sent -> response headers), ``idle``
(longest silence between two body chunks). TLS verification is on unless a provider's config
turns it off explicitly.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass

try:
    # httpx2 (pydantic's fork, also what the openai/anthropic SDKs use) keeps the httpx API but its
    # connection pool does not rescan every pooled connection on every request
    # (encode/httpcore#1035): that scan was 80 % of the gateway's CPU under load (docs/benchmarks.md).
    import httpx2 as httpx
except ImportError:  # pragma: no cover - httpx2 is a dependency; plain httpx still works
    import httpx

from antiapi import __version__
from antiapi.errors import ProviderError, StreamInterrupted, UpstreamTimeout, UpstreamUnavailable
from antiapi.providers.base import UpstreamResponse

USER_AGENT = f"antiapi/{__version__}"


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 10.0
    first_byte: float = 120.0
    idle: float = 300.0


def build_client(
    *, timeouts: Timeouts, verify: bool = True, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(connect=timeouts.connect, read=timeouts.idle, write=timeouts.idle, pool=timeouts.connect),
        limits=httpx.Limits(max_connections=1000, max_keepalive_connections=200, keepalive_expiry=60),
        verify=verify,
        transport=transport,
        trust_env=False,
        headers={"user-agent": USER_AGENT},
        follow_redirects=False,
    )


ErrorParser = Callable[[int, Mapping[str, str], bytes], ProviderError]


class HttpUpstreamResponse(UpstreamResponse):
    __slots__ = ("_resp", "status", "headers", "_provider")

    def __init__(self, resp: httpx.Response, provider: str) -> None:
        self._resp = resp
        self.status = resp.status_code
        self.headers = resp.headers
        self._provider = provider

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._resp.aiter_raw():
                yield chunk
        except httpx.TimeoutException as e:
            raise UpstreamTimeout(
                f"{self._provider}: the upstream sent nothing for too long (idle timeout)", provider=self._provider
            ) from e
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.NetworkError) as e:
            raise StreamInterrupted(
                f"{self._provider}: the upstream connection broke mid-response ({type(e).__name__})",
                provider=self._provider,
            ) from e

    async def aread(self) -> bytes:
        chunks = [c async for c in self.aiter_bytes()]
        return b"".join(chunks)

    async def aclose(self) -> None:
        await self._resp.aclose()


async def send(
    client: httpx.AsyncClient,
    *,
    provider: str,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    first_byte_timeout: float,
    parse_error: ErrorParser,
) -> HttpUpstreamResponse:
    """Send and wait for the response headers; raise a typed ProviderError on any failure."""
    request = client.build_request(method, url, headers=headers, content=body)
    try:
        resp = await asyncio.wait_for(client.send(request, stream=True), timeout=first_byte_timeout)
    except (asyncio.TimeoutError, httpx.TimeoutException) as e:
        kind = "connect" if isinstance(e, httpx.ConnectTimeout) else "first byte"
        raise UpstreamTimeout(f"{provider}: the upstream did not answer in time ({kind} timeout)", provider=provider) from e
    except httpx.ConnectError as e:
        raise UpstreamUnavailable(f"{provider}: cannot connect to {_origin(url)} ({_reason(e)})", provider=provider) from e
    except httpx.HTTPError as e:
        raise UpstreamUnavailable(f"{provider}: request to {_origin(url)} failed ({_reason(e)})", provider=provider) from e
    if resp.status_code >= 400:
        try:
            raw = await asyncio.wait_for(resp.aread(), timeout=first_byte_timeout)
        except (asyncio.TimeoutError, httpx.HTTPError):
            raw = b""
        finally:
            await resp.aclose()
        err = parse_error(resp.status_code, resp.headers, raw)
        err.provider = provider
        err.request_id = resp.headers.get("request-id") or resp.headers.get("x-request-id")
        raise err
    return HttpUpstreamResponse(resp, provider)


def _origin(url: str) -> str:
    u = httpx.URL(url)
    return f"{u.scheme}://{u.host}" + (f":{u.port}" if u.port else "")


def _reason(e: Exception) -> str:
    text = str(e) or type(e).__name__
    return text.splitlines()[0][:200]

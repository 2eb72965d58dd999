"""The session's REST transport: one keep-alive HTTP/1.1 connection pool to the venue.

Every Binance REST call is one request to one host, a path and a query string
the session has already encoded and signed, no body, and an answer read whole.
``httpx.AsyncClient`` does far more per request than that needs: it parses and
validates the URL character by character (twice: the path, then merged with
the base URL), merges default headers and cookies, runs the auth and redirect
machinery, stores the answer's cookies and wraps the answer in a decoding
response. Timed on a trio thread against the local venue (one signed market
order, the benchmark VM): 1,659 us through ``AsyncClient.request``, 1,473 us
through its transport, 1,322 us through ``httpcore``'s pool: ~190 us of the
~340 us spent in ``httpx`` is the client's, the rest its transport layer's.

:class:`RestTransport` asks ``httpcore``'s connection pool, the one ``httpx``
itself sends through, directly: the same connections, TLS context
(``httpx.create_ssl_context``, which honours ``SSL_CERT_FILE``), timeouts,
limits and HTTP/1.1, with a URL built from parts the session already knows to
be valid (the base URL parsed once, at open; the target is what the session
encoded). What it leaves out and why that is safe here: cookies (Binance sets
none that matter), redirects (``httpx`` follows none by default either),
``Accept-Encoding`` (so answers come uncompressed and need no decoding) and
proxies. A proxy configured in the environment is the one thing ``httpx``
would do that this does not, so with any ``*_proxy`` variable set
:func:`open_rest_transport` carries every request through ``httpx.AsyncClient``
as before.

Transport failures come out as ``BrokerTimeoutError`` (no answer in time) or
``BrokerConnectionError`` (anything else between us and the venue), for either
transport, as ``httpx``'s did.
"""

from __future__ import annotations

import contextlib
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import httpcore
import httpx

from ..._exceptions import BrokerConnectionError, BrokerTimeoutError

__all__ = ["HttpAnswer", "HttpTransport", "HttpxTransport", "RestTransport", "open_rest_transport"]

_TIMEOUTS = (httpcore.TimeoutException, httpx.TimeoutException)
_FAILURES = (
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.ProxyError,
    httpcore.UnsupportedProtocol,
    httpx.HTTPError,
)
_KEEPALIVE_EXPIRY = 5.0
"""Seconds an idle connection is kept: ``httpx``'s default."""


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """A venue's HTTP answer, read whole; header names lower-cased."""

    status: int
    headers: Mapping[str, str]
    content: bytes


class HttpTransport(Protocol):
    """What the session asks of a REST transport (either kind below)."""

    async def request(self, method: str, target: str, api_key: str | None) -> HttpAnswer: ...

    async def aclose(self) -> None: ...


class RestTransport:
    """Requests to one venue straight through ``httpcore``'s connection pool."""

    def __init__(
        self,
        base_url: str,
        *,
        broker: str,
        request_timeout: float,
        connect_timeout: float,
        max_connections: int,
    ) -> None:
        url = httpx.URL(base_url)
        self._broker = broker
        self._timeout = request_timeout
        self._scheme = url.raw_scheme
        self._host = url.raw_host
        self._port = url.port
        self._prefix = url.raw_path.rstrip(b"/")
        self._host_header = (b"Host", url.netloc)
        self._timeouts = {
            "timeout": {
                "connect": connect_timeout,
                "read": request_timeout,
                "write": request_timeout,
                "pool": request_timeout,
            }
        }
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context() if url.scheme == "https" else None,
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=_KEEPALIVE_EXPIRY,
        )

    async def request(self, method: str, target: str, api_key: str | None) -> HttpAnswer:
        """``method target`` (``target``: the path and encoded query, as sent); the
        ``X-MBX-APIKEY`` header if ``api_key`` is given."""
        headers = [self._host_header]
        if api_key is not None:
            headers.append((b"X-MBX-APIKEY", api_key.encode()))
        if method in ("POST", "PUT"):  # as httpx frames a request without a body
            headers.append((b"Content-Length", b"0"))
        url = httpcore.URL(
            scheme=self._scheme,
            host=self._host,
            port=self._port,
            target=self._prefix + target.encode(),
        )
        with _converted(method, target, self._timeout, self._broker):
            response = await self._pool.request(
                method, url, headers=headers, extensions=self._timeouts
            )
        return HttpAnswer(
            response.status,
            {
                name.decode("latin-1").lower(): value.decode("latin-1")
                for name, value in response.headers
            },
            response.content,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


class HttpxTransport:
    """Requests through ``httpx.AsyncClient``: kept for a proxy set in the environment."""

    def __init__(
        self,
        base_url: str,
        *,
        broker: str,
        request_timeout: float,
        connect_timeout: float,
        max_connections: int,
    ) -> None:
        self._broker = broker
        self._timeout = request_timeout
        self._client = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(request_timeout, connect=connect_timeout),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        )

    async def request(self, method: str, target: str, api_key: str | None) -> HttpAnswer:
        headers = {} if api_key is None else {"X-MBX-APIKEY": api_key}
        with _converted(method, target, self._timeout, self._broker):
            response = await self._client.request(method, target, headers=headers)
        return HttpAnswer(
            response.status_code,
            {key.lower(): value for key, value in response.headers.items()},
            response.content,
        )

    async def aclose(self) -> None:
        await self._client.aclose()


def open_rest_transport(
    base_url: str,
    *,
    broker: str,
    request_timeout: float,
    connect_timeout: float,
    max_connections: int,
) -> HttpTransport:
    """The lean transport, or ``httpx.AsyncClient`` if the environment names a proxy."""
    kind = HttpxTransport if urllib.request.getproxies() else RestTransport
    return kind(
        base_url,
        broker=broker,
        request_timeout=request_timeout,
        connect_timeout=connect_timeout,
        max_connections=max_connections,
    )


@contextlib.contextmanager
def _converted(method: str, target: str, timeout: float, broker: str) -> Iterator[None]:
    """Either transport's failures as ours: no answer in time, or anything else between
    us and the venue. The message names the path, never the (signed) query."""
    try:
        yield
    except _TIMEOUTS as exc:
        raise BrokerTimeoutError(
            f"{method} {_path(target)}: no answer within {timeout}s", broker=broker
        ) from exc
    except _FAILURES as exc:
        raise BrokerConnectionError(
            f"{method} {_path(target)}: {type(exc).__name__}", broker=broker
        ) from exc


def _path(target: str) -> str:
    """The path of a request target, without its (signed) query."""
    return target.partition("?")[0]

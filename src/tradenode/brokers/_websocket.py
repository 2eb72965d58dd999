"""Opening a venue's WebSocket the way every adapter session needs it.

The session opens the TCP (and TLS) stream itself and keeps it, so closing
the connection never depends on how the WebSocket ended (an abnormal close
leaves trio-websocket's own stream open). A connection that cannot be made
is a ``BrokerConnectionError`` naming the URL without its query (where some
venues carry keys).
"""

from __future__ import annotations

import ssl
import urllib.parse

import trio
import trio_websocket

from .._exceptions import BrokerConnectionError, BrokerError

__all__ = ["RawStream", "close_reason", "describe_error", "open_websocket"]

RawStream = trio.SocketStream | trio.SSLStream[trio.SocketStream]
"""The TCP (or TLS) stream under a WebSocket, closed by the session itself."""


def describe_error(exc: BaseException) -> str:
    """One line for a log or an error: every exception of a group, ours as they say."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe_error(inner) for inner in exc.exceptions)
    if isinstance(exc, BrokerError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def close_reason(exc: trio_websocket.ConnectionClosed) -> str:
    """How a WebSocket ended, as its close frame (if any) said."""
    reason = exc.reason
    if reason is None:
        return "no close frame"
    return f"code {reason.code}{': ' + reason.reason if reason.reason else ''}"


async def open_websocket(
    nursery: trio.Nursery,
    url: str,
    *,
    broker: str,
    streams: list[RawStream],
    max_message_size: int = 16 * 2**20,
) -> trio_websocket.WebSocketConnection:
    """Connect to ``url`` (``ws://`` or ``wss://``); the raw stream goes into ``streams``."""
    parts = urllib.parse.urlsplit(url)
    secure = parts.scheme == "wss"
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        tcp = await trio.open_tcp_stream(host, port)
        stream: RawStream = tcp
        if secure:
            stream = trio.SSLStream(tcp, ssl.create_default_context(), server_hostname=host)
        streams.append(stream)
        return await trio_websocket.wrap_client_stream(
            nursery,
            stream,
            host if parts.port is None else f"{host}:{port}",
            resource,
            message_queue_size=1024,
            max_message_size=max_message_size,
        )
    except (
        OSError,
        trio.BrokenResourceError,
        trio_websocket.HandshakeError,
        trio_websocket.ConnectionRejected,
        trio_websocket.ConnectionClosed,
    ) as exc:
        shown = f"{parts.scheme}://{parts.netloc}{parts.path}"
        raise BrokerConnectionError(
            f"cannot connect to {shown}: {describe_error(exc)}", broker=broker
        ) from exc

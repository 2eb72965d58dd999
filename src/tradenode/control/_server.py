"""The control API's server: hypercorn serving an ASGI app on a trio loop in a thread.

The node owns the thread: ``start()`` returns once the socket is bound (so the
URL is known) and ``stop()`` returns once the loop has ended. The loop only
serves HTTP; every call into the node runs on a worker thread
(``trio.to_thread``), since node calls block on actors' answers.

On ``host:port``, or on a Unix socket: this module binds that one itself and
makes it mode 0600 before hypercorn listens on it (handed over as ``fd://``),
so no other user can ever connect. With a certificate and key, HTTPS.

An HTTP/1.1 answer sent before its request's body was read says
``Connection: close`` (:class:`CloseWhenBodyUnread`): hypercorn closes such a
connection anyway, and a client that was not told so reuses it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import stat
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Self

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from hypercorn.typing import (
    ASGIFramework,
    ASGIReceiveCallable,
    ASGIReceiveEvent,
    ASGISendCallable,
    ASGISendEvent,
    Scope,
)

__all__ = ["CloseWhenBodyUnread", "ControlServerRunner"]

logger = logging.getLogger("tradenode.control")


class ControlServerRunner:
    """One ASGI app served on ``host:port`` (0 = any free port), or on the Unix socket
    ``unix_socket``, over HTTPS with ``certfile``/``keyfile``, until stopped."""

    def __init__(
        self,
        app: Any,
        *,
        host: str,
        port: int,
        unix_socket: str | None = None,
        certfile: str | None = None,
        keyfile: str | None = None,
    ) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._unix_socket = None if unix_socket is None else Path(unix_socket)
        self._certfile = certfile
        self._keyfile = keyfile
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.bound: str | None = None
        """``host:port`` (or ``unix:<path>``) once bound."""
        self.url: str | None = None
        """``http://host:port``, ``https://host:port`` or ``unix:<path>`` once bound."""

    def start(self, timeout: float = 30.0) -> Self:
        if self._thread is not None:
            raise RuntimeError("the control server is already started")
        self._thread = threading.Thread(target=self._run, name="control-api", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the control API did not start in time")
        if self._error is not None:
            self._thread.join()
            where = self._unix_socket or f"{self._host}:{self._port}"
            raise RuntimeError(f"the control API could not serve {where}") from self._error
        return self

    def stop(self, timeout: float = 30.0) -> None:
        thread, token, stop = self._thread, self._token, self._stop
        if thread is None:
            return
        if token is not None and stop is not None and thread.is_alive():
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(stop.set, trio_token=token)
        thread.join(timeout)
        self._thread = None
        if self._unix_socket is not None and self.bound is not None:
            with contextlib.suppress(OSError):
                if stat.S_ISSOCK(self._unix_socket.lstat().st_mode):
                    self._unix_socket.unlink()

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as error:
            logger.exception("the control API's loop failed")
            self._error = error
        finally:
            self._token = None
            self._ready.set()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        config = Config()
        if self._unix_socket is not None:
            config.bind = [f"fd://{_private_unix_socket(self._unix_socket)}"]
        else:
            config.bind = [f"{self._host}:{self._port}"]
        config.certfile = self._certfile
        config.keyfile = self._keyfile
        config.errorlog = logger
        config.accesslog = None
        config.graceful_timeout = 1
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(self._serve, config)
            self.bound = binds[0].partition("://")[2]
            self.url = self.bound if self.bound.startswith("unix:") else binds[0]
            self._ready.set()

    async def _serve(
        self, config: Config, *, task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        assert self._stop is not None
        await serve(
            CloseWhenBodyUnread(self._app),
            config,
            shutdown_trigger=self._stop.wait,
            task_status=task_status,
        )


class CloseWhenBodyUnread:
    """ASGI middleware: an HTTP/1.x answer that starts before its request's body
    was read in full carries ``Connection: close``.

    hypercorn (h11) cannot take the connection's next request while this one's
    body is still arriving, so once such an answer is out it closes the
    connection, without saying so in the answer. A refusal does this (an action
    refused for its token is answered without reading its body): the client,
    told nothing, keeps the connection alive and sends its next request into a
    socket being closed ("Server disconnected without sending a response", a
    flaky control API test). ``Connection: close`` is HTTP/1.1's way to say it
    (RFC 9112, section 9.6): the client opens a new connection for its next
    request. Draining the body instead would make the server read whatever an
    unauthorised client sends.
    """

    def __init__(self, app: ASGIFramework) -> None:
        self._app = app

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if (
            scope["type"] != "http"
            or scope["http_version"] not in ("1.0", "1.1")
            or not _has_body(scope["headers"])
        ):
            await self._app(scope, receive, send)
            return
        body_read = False

        async def receive_tracked() -> ASGIReceiveEvent:
            nonlocal body_read
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                body_read = True
            return message

        async def send_tracked(message: ASGISendEvent) -> None:
            if message["type"] == "http.response.start" and not body_read:
                headers = [
                    (name, value)
                    for name, value in message["headers"]
                    if name.lower() != b"connection"
                ]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self._app(scope, receive_tracked, send_tracked)


def _has_body(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether the request announces a body (a non-zero length, or chunks)."""
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"transfer-encoding":
            return True
        if lowered == b"content-length":
            return value.strip() not in (b"", b"0")
    return False


def _private_unix_socket(path: Path) -> int:
    """A Unix socket bound at ``path`` with mode 0600, not listening yet: its file
    descriptor, for hypercorn (``fd://``) to listen on. A stale socket file there (a
    node that died) is replaced; a socket something listens on, or any other file,
    is an error."""
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise FileExistsError(f"{path} exists and is not a socket")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(path))
            except OSError:
                pass  # nobody listens: stale
            else:
                raise FileExistsError(f"{path}: another process serves on this socket")
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        # Before listen(): until then a connect is refused, so no one gets in early.
        os.chmod(path, 0o600)
    except BaseException:
        sock.close()
        raise
    return sock.detach()

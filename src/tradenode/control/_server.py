"""The control API's server: hypercorn serving an ASGI app on a trio loop in a thread.

The node owns the thread: ``start()`` returns once the socket is bound (so the
URL is known) and ``stop()`` returns once the loop has ended. The loop only
serves HTTP; every call into the node runs on a worker thread
(``trio.to_thread``), since node calls block on actors' answers.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any, Self

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

__all__ = ["ControlServerRunner"]

logger = logging.getLogger("tradenode.control")


class ControlServerRunner:
    """One ASGI app served on ``host:port`` (0 = any free port) until stopped."""

    def __init__(self, app: Any, *, host: str, port: int) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.bound: str | None = None
        """``host:port`` once bound."""

    def start(self, timeout: float = 30.0) -> Self:
        if self._thread is not None:
            raise RuntimeError("the control server is already started")
        self._thread = threading.Thread(target=self._run, name="control-api", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the control API did not start in time")
        if self._error is not None:
            self._thread.join()
            raise RuntimeError(
                f"the control API could not serve {self._host}:{self._port}"
            ) from self._error
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
        config.bind = [f"{self._host}:{self._port}"]
        config.errorlog = logger
        config.accesslog = None
        config.graceful_timeout = 1
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(self._serve, config)
            self.bound = binds[0].removeprefix("http://")
            self._ready.set()

    async def _serve(
        self, config: Config, *, task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        assert self._stop is not None
        await serve(self._app, config, shutdown_trigger=self._stop.wait, task_status=task_status)

"""What the node runs: the control app served on its thread, and where its URL is told."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Self

from ._app import ControlApp
from ._config import ControlConfig
from ._server import ControlServerRunner

if TYPE_CHECKING:
    from .._config import NodeConfig
    from .._node import Node

__all__ = ["ControlServer", "url_file_of"]

logger = logging.getLogger("tradenode.control")


def url_file_of(config: NodeConfig) -> Path | None:
    """Where a node with ``config`` writes its control URL (for ``tradenode ctl``)."""
    if config.control.url_file is not None:
        return Path(config.control.url_file)
    if config.journal is None:
        return None
    journal = Path(config.journal.path)
    return journal.with_name(journal.name + ".control.json")


class ControlServer:
    """A node's control API: started by ``Node.start`` when ``control.enabled``."""

    def __init__(self, node: Node, config: ControlConfig) -> None:
        self.app = ControlApp(node, config)
        self._runner = ControlServerRunner(
            self.app.asgi,
            host=config.host,
            port=config.port,
            unix_socket=config.unix_socket,
            certfile=config.tls_certfile,
            keyfile=config.tls_keyfile,
        )
        self._url_file = url_file_of(node.config)
        self.url: str | None = None

    def start(self) -> Self:
        self._runner.start()
        self.url = self._runner.url
        assert self.url is not None
        logger.info("control API on %s", self.url)
        if self._url_file is not None:
            self._url_file.parent.mkdir(parents=True, exist_ok=True)
            temporary = self._url_file.with_name(self._url_file.name + ".tmp")
            temporary.write_text(json.dumps({"url": self.url, "pid": os.getpid()}) + "\n")
            temporary.replace(self._url_file)
        return self

    def stop(self) -> None:
        self.app.close()
        self._runner.stop()
        if self._url_file is not None and self.url is not None:
            try:
                written = json.loads(self._url_file.read_text())
            except (OSError, ValueError):
                return
            if written.get("url") == self.url:
                self._url_file.unlink(missing_ok=True)

"""The ``control:`` section of a node config: where the control API listens, who may act.

Kept free of the server's imports (starlette, hypercorn): ``tradenode._config``
imports this module, and reading a config must not load a web framework.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from .._exceptions import ConfigError

__all__ = ["ControlConfig"]

_TOKEN_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_MIN_TOKEN_CHARS = 16


def is_loopback(host: str) -> bool:
    """Whether ``host`` binds only this machine (``localhost`` or a loopback address)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ControlConfig(BaseModel):
    """The node's control API (HTTP + JSON).

    Reads (status, orders, ...) are open to anyone who can reach the port,
    which on a loopback bind is this machine's users; every action needs
    ``Authorization: Bearer <token>`` with one of ``tokens``, whose *name* is
    what the audit record says did it. A non-loopback ``host`` needs
    ``allow_remote: true`` and then reads need a token too.

    ``unix_socket`` serves on a Unix socket instead of ``host:port``: the
    socket file is made mode 0600 before it listens, so only this user can
    connect (reads are open to that user, actions still need a token).
    ``tls_certfile`` and ``tls_keyfile`` (both or neither) serve HTTPS; without
    them a remote bind carries tokens in clear text.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    enabled: bool = False
    host: str = Field("127.0.0.1", min_length=1)
    port: int = Field(0, ge=0, le=65535)
    """0: any free port (the bound URL is logged, in ``Node.control_url`` and in
    ``url_file``)."""
    tokens: dict[str, SecretStr] = {}
    """Token name -> secret (``${ENV}`` in the file: secrets belong in the environment)."""
    allow_remote: bool = False
    url_file: str | None = None
    """Where the bound URL is written for ``tradenode ctl``; default: beside the journal
    directory (``<journal.path>.control.json``), none without a journal."""
    max_body_bytes: int = Field(64 * 1024, ge=1024, le=16 * 1024 * 1024)
    unix_socket: str | None = Field(None, min_length=1)
    """Serve here (a path) instead of ``host:port``; the file is mode 0600."""
    tls_certfile: str | None = Field(None, min_length=1)
    """The server's certificate chain (PEM): with ``tls_keyfile``, the API is HTTPS."""
    tls_keyfile: str | None = Field(None, min_length=1)
    """The certificate's private key (PEM; keep the file itself private)."""

    @field_validator("tokens")
    @classmethod
    def _tokens_are_named_and_long(cls, tokens: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, secret in tokens.items():
            if not _TOKEN_NAME.fullmatch(name):
                raise ConfigError(
                    "a token's name is 1-64 letters, digits, '_', '.' or '-'", key=name
                )
            if len(secret.get_secret_value()) < _MIN_TOKEN_CHARS:
                raise ConfigError(f"token {name}: at least {_MIN_TOKEN_CHARS} characters", key=name)
        return tokens

    @model_validator(mode="after")
    def _remote_only_when_asked(self) -> Self:
        if self.unix_socket is None and not is_loopback(self.host) and not self.allow_remote:
            clear = "" if self.tls else " (without tls_certfile/tls_keyfile tokens travel in clear)"
            raise ConfigError(
                f"{self.host} is not a loopback address: set allow_remote: true to serve it"
                + clear,
                key="host",
            )
        return self

    @model_validator(mode="after")
    def _tls_files_together(self) -> Self:
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            missing = "tls_keyfile" if self.tls_keyfile is None else "tls_certfile"
            raise ConfigError("TLS needs both tls_certfile and tls_keyfile", key=missing)
        for key, path in (("tls_certfile", self.tls_certfile), ("tls_keyfile", self.tls_keyfile)):
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"{path}: no such file", key=key)
        return self

    @property
    def tls(self) -> bool:
        """True when the API is served over HTTPS."""
        return self.tls_certfile is not None

    @property
    def reads_need_token(self) -> bool:
        """Reads are open on loopback or the owner's Unix socket only."""
        return self.unix_socket is None and not is_loopback(self.host)

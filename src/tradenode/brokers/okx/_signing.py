"""OKX v5 request signing: HMAC-SHA256, base64, over timestamp + method + path + body.

REST (OKX docs, "REST Authentication"; python-okx ``okx/utils.py``): the
prehash is ``timestamp + METHOD + requestPath + body`` where the timestamp
is ISO-8601 UTC with milliseconds (``2020-12-08T09:08:57.715Z``), the path
carries the query string of a GET and the body is the exact JSON text sent
(empty for a GET). The signature goes in ``OK-ACCESS-SIGN`` next to
``OK-ACCESS-KEY``, ``OK-ACCESS-TIMESTAMP`` and ``OK-ACCESS-PASSPHRASE``;
demo trading adds ``x-simulated-trading: 1`` on the same host.

WebSocket login (``#overview-websocket-login``; python-okx
``WsUtils.initLoginParams``): the same HMAC over ``timestamp + "GET" +
"/users/self/verify"`` with the timestamp in Unix seconds.

Nothing here does I/O. :class:`OkxCredentials` never prints its secret or
passphrase: its repr masks the key and hides the rest.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
from dataclasses import dataclass, field

__all__ = [
    "WS_LOGIN_PATH",
    "OkxCredentials",
    "iso_timestamp",
    "rest_headers",
    "sign",
    "ws_login_args",
]

#: The request path the WebSocket login signs (OKX docs, "Login").
WS_LOGIN_PATH = "/users/self/verify"


@dataclass(frozen=True, slots=True)
class OkxCredentials:
    """An OKX API key, its secret and the passphrase chosen when it was created."""

    api_key: str
    secret: str = field(repr=False)
    passphrase: str = field(repr=False)

    def __post_init__(self) -> None:
        for name in ("api_key", "secret", "passphrase"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"OkxCredentials.{name}: must be a non-empty string")

    def __repr__(self) -> str:
        return f"OkxCredentials(api_key={masked(self.api_key)!r})"


def masked(key: str) -> str:
    """Enough of an API key to tell two apart in a log line, never all of it."""
    return f"{key[:4]}…{key[-3:]}" if len(key) > 10 else "…"


def sign(secret: str, prehash: str) -> str:
    """base64(HMAC-SHA256(secret, prehash)), both as UTF-8."""
    digest = hmac.new(secret.encode("utf-8"), prehash.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def iso_timestamp(time_ms: int) -> str:
    """``time_ms`` (Unix milliseconds) as OKX's REST timestamp: ISO-8601 UTC, ms, ``Z``."""
    moment = datetime.datetime.fromtimestamp(time_ms / 1000, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{time_ms % 1000:03d}Z"


def rest_headers(
    credentials: OkxCredentials,
    *,
    time_ms: int,
    method: str,
    request_path: str,
    body: str = "",
    demo: bool = False,
) -> dict[str, str]:
    """The headers of one signed REST request; ``request_path`` includes the query."""
    timestamp = iso_timestamp(time_ms)
    headers = {
        "Content-Type": "application/json",
        "OK-ACCESS-KEY": credentials.api_key,
        "OK-ACCESS-SIGN": sign(
            credentials.secret, timestamp + method.upper() + request_path + body
        ),
        "OK-ACCESS-TIMESTAMP": timestamp,
        "OK-ACCESS-PASSPHRASE": credentials.passphrase,
    }
    if demo:
        headers["x-simulated-trading"] = "1"
    return headers


def ws_login_args(credentials: OkxCredentials, *, time_s: int) -> dict[str, str]:
    """The one ``args`` entry of ``{"op": "login"}`` (timestamp in Unix seconds)."""
    timestamp = str(time_s)
    return {
        "apiKey": credentials.api_key,
        "passphrase": credentials.passphrase,
        "timestamp": timestamp,
        "sign": sign(credentials.secret, timestamp + "GET" + WS_LOGIN_PATH),
    }

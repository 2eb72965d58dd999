"""Binance Spot request signing (HMAC-SHA256): pure functions, no I/O.

Two payload rules, both from Binance's docs (rest-api.md "SIGNED Endpoint
Examples", web-socket-api.md "SIGNED request example (HMAC)"):

- **REST**: the query string exactly as sent, ``k=v`` joined by ``&`` in the
  order sent, values percent-encoded as UTF-8 (a full-width digit becomes
  ``%EF%BC%91``); ``signature`` goes last and is not signed.
- **WebSocket API**: every param except ``signature``, sorted by name,
  ``k=v`` joined by ``&``, values raw UTF-8 (not percent-encoded).

The signature is the lowercase hex HMAC-SHA256 of that payload keyed with
the API secret. Secrets never appear in a repr, a log line or an error.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

__all__ = [
    "BinanceCredentials",
    "encode_params",
    "sign_rest",
    "sign_ws",
    "signed_query",
    "signed_ws_params",
    "ws_signature_payload",
]

_RESERVED = frozenset({"signature", "timestamp", "recvWindow", "apiKey"})


@dataclass(frozen=True, slots=True, repr=False)
class BinanceCredentials:
    """An HMAC API key and its secret; the repr shows a masked key and never the secret."""

    api_key: str
    api_secret: str

    def __post_init__(self) -> None:
        for name in ("api_key", "api_secret"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"BinanceCredentials.{name}: must be a non-empty string")

    def __repr__(self) -> str:
        key = self.api_key
        masked = f"{key[:4]}…{key[-3:]}" if len(key) > 10 else "…"
        return f"BinanceCredentials(api_key={masked!r})"

    __str__ = __repr__


def _encode(text: str) -> str:
    # Unreserved characters (RFC 3986: ALPHA / DIGIT / "-" / "." / "_" / "~") stay,
    # everything else is percent-encoded from UTF-8, as Binance's own examples do.
    return quote(text, safe="", encoding="utf-8", errors="strict")


def encode_params(params: Sequence[tuple[str, str]]) -> str:
    """``k=v&...`` in the given order with percent-encoded (UTF-8) keys and values."""
    return "&".join(f"{_encode(key)}={_encode(value)}" for key, value in params)


def sign_rest(secret: str, payload: str) -> str:
    """Lowercase hex HMAC-SHA256 of ``payload`` keyed with ``secret``."""
    return hmac.new(secret.encode("utf-8"), payload.encode("utf-8"), hashlib.sha256).hexdigest()


def ws_signature_payload(params: Mapping[str, str]) -> str:
    """The WebSocket API signature payload: every param but ``signature``, sorted by
    name, ``k=v`` joined by ``&``, values not percent-encoded."""
    return "&".join(f"{key}={params[key]}" for key in sorted(params) if key != "signature")


def sign_ws(secret: str, params: Mapping[str, str]) -> str:
    """The ``signature`` param of a signed WebSocket API request."""
    return sign_rest(secret, ws_signature_payload(params))


def _check_reserved(params: Sequence[tuple[str, str]] | Mapping[str, str]) -> None:
    names = params.keys() if isinstance(params, Mapping) else (key for key, _ in params)
    clash = sorted(_RESERVED.intersection(names))
    if clash:
        raise ValueError(f"signed request params must not carry {', '.join(clash)}: added here")


def _check_timing(timestamp_ms: int, recv_window_ms: int | None) -> None:
    if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, int) or timestamp_ms <= 0:
        raise ValueError(f"timestamp_ms={timestamp_ms!r}: must be a positive int")
    if recv_window_ms is not None and (
        isinstance(recv_window_ms, bool)
        or not isinstance(recv_window_ms, int)
        or not 0 < recv_window_ms <= 60_000
    ):
        raise ValueError(f"recv_window_ms={recv_window_ms!r}: must be an int in (0, 60000]")


def signed_query(
    credentials: BinanceCredentials,
    params: Sequence[tuple[str, str]],
    *,
    timestamp_ms: int,
    recv_window_ms: int | None,
) -> str:
    """The full signed REST query string: ``params``, ``recvWindow`` (if given),
    ``timestamp``, then ``&signature=<hex>`` last. Send it byte for byte."""
    _check_reserved(params)
    _check_timing(timestamp_ms, recv_window_ms)
    full = list(params)
    if recv_window_ms is not None:
        full.append(("recvWindow", str(recv_window_ms)))
    full.append(("timestamp", str(timestamp_ms)))
    payload = encode_params(full)
    return f"{payload}&signature={sign_rest(credentials.api_secret, payload)}"


def signed_ws_params(
    credentials: BinanceCredentials,
    params: Mapping[str, str],
    *,
    timestamp_ms: int,
    recv_window_ms: int | None,
) -> dict[str, str]:
    """``params`` plus ``apiKey``, ``timestamp``, ``recvWindow`` (if given) and the
    ``signature`` over all of them, for a signed WebSocket API request."""
    _check_reserved(params)
    _check_timing(timestamp_ms, recv_window_ms)
    full = dict(params)
    full["apiKey"] = credentials.api_key
    full["timestamp"] = str(timestamp_ms)
    if recv_window_ms is not None:
        full["recvWindow"] = str(recv_window_ms)
    full["signature"] = sign_ws(credentials.api_secret, full)
    return full

"""Binance Spot request signing (HMAC-SHA256 or Ed25519): pure functions, no I/O.

Two payload rules, both from Binance's docs (rest-api.md "SIGNED Endpoint
Examples", web-socket-api.md "SIGNED request example (HMAC)" and "(Ed25519)"):

- **REST**: the query string exactly as sent, ``k=v`` joined by ``&`` in the
  order sent, values percent-encoded as UTF-8 (a full-width digit becomes
  ``%EF%BC%91``); ``signature`` goes last and is not signed.
- **WebSocket API**: every param except ``signature``, sorted by name,
  ``k=v`` joined by ``&``, values raw UTF-8 (not percent-encoded).

Two key types sign that payload:

- :class:`BinanceCredentials` (HMAC): the lowercase hex HMAC-SHA256 keyed
  with the API secret.
- :class:`Ed25519Credentials`: the base64 Ed25519 signature (RFC 8032) of the
  payload's bytes, made with the private key whose public half was
  registered with Binance; percent-encoded in a REST query (``+``, ``/``,
  ``=``), raw in WebSocket API params. Only these keys may log a WebSocket
  API session on (``session.logon``), Binance's recommended way to receive
  the user data stream.

Secrets (the HMAC secret, the private key) never appear in a repr, a log
line or an error.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)

__all__ = [
    "ApiCredentials",
    "BinanceCredentials",
    "Ed25519Credentials",
    "encode_params",
    "sign_ed25519",
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
        return f"BinanceCredentials(api_key={_masked(self.api_key)!r})"

    __str__ = __repr__

    @property
    def key_type(self) -> str:
        return "hmac"

    def sign(self, payload: str) -> str:
        """The ``signature`` of ``payload``: lowercase hex HMAC-SHA256."""
        return sign_rest(self.api_secret, payload)


def _masked(key: str) -> str:
    return f"{key[:4]}…{key[-3:]}" if len(key) > 10 else "…"


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class Ed25519Credentials:
    """An Ed25519 API key and its private key; the repr shows a masked key only.

    Build it with :meth:`from_pem` from the PKCS#8 PEM Binance's key
    generator writes (``-----BEGIN PRIVATE KEY-----``), optionally encrypted.
    """

    api_key: str
    private_key: Ed25519PrivateKey

    def __post_init__(self) -> None:
        if not isinstance(self.api_key, str) or not self.api_key.strip():
            raise ValueError("Ed25519Credentials.api_key: must be a non-empty string")
        if not isinstance(self.private_key, Ed25519PrivateKey):
            raise ValueError("Ed25519Credentials.private_key: must be an Ed25519 private key")

    @classmethod
    def from_pem(
        cls, api_key: str, pem: str | bytes, *, password: str | bytes | None = None
    ) -> Ed25519Credentials:
        """Load the private key from PEM. The error never quotes the key."""
        data = pem.encode("utf-8") if isinstance(pem, str) else pem
        secret = password.encode("utf-8") if isinstance(password, str) else password
        try:
            key = load_pem_private_key(data, password=secret)
        except (ValueError, TypeError):
            # No chained cause: the library's message may describe the key's bytes.
            raise ValueError("not a PEM private key (or a wrong or missing password)") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"not an Ed25519 private key ({type(key).__name__})")
        return cls(api_key, key)

    def __repr__(self) -> str:
        return f"Ed25519Credentials(api_key={_masked(self.api_key)!r})"

    __str__ = __repr__

    @property
    def key_type(self) -> str:
        return "ed25519"

    def sign(self, payload: str) -> str:
        """The ``signature`` of ``payload``: base64 Ed25519 (case-sensitive)."""
        return sign_ed25519(self.private_key, payload)

    def public_key_pem(self) -> str:
        """The public half, as the PEM to register with the venue (``BEGIN PUBLIC KEY``)."""
        return (
            self.private_key.public_key()
            .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
            .decode("ascii")
        )


ApiCredentials: TypeAlias = BinanceCredentials | Ed25519Credentials
"""Either kind of Binance API key: both sign with ``sign(payload)``."""


def _encode(text: str) -> str:
    # Unreserved characters (RFC 3986: ALPHA / DIGIT / "-" / "." / "_" / "~") stay,
    # everything else is percent-encoded from UTF-8, as Binance's own examples do.
    return quote(text, safe="", encoding="utf-8", errors="strict")


_UNRESERVED = re.compile(r"[A-Za-z0-9._~-]*")
"""Text ``_encode`` leaves as it is (ASCII only: the ranges are spelled out)."""


def encode_params(params: Sequence[tuple[str, str]]) -> str:
    """``k=v&...`` in the given order with percent-encoded (UTF-8) keys and values.

    An order's params are nearly always all unreserved characters (names, enums,
    decimals, ids), which percent-encoding leaves as they are: one check of them
    all, instead of a ``quote`` per key and per value, then they are joined as
    they are. Anything else (a ``&``, a space, a non-ASCII character) is encoded
    one by one as before."""
    if _UNRESERVED.fullmatch("".join([key + value for key, value in params])):
        return "&".join([f"{key}={value}" for key, value in params])
    return "&".join(f"{_encode(key)}={_encode(value)}" for key, value in params)


def sign_rest(secret: str, payload: str) -> str:
    """Lowercase hex HMAC-SHA256 of ``payload`` keyed with ``secret``."""
    return hmac.new(secret.encode("utf-8"), payload.encode("utf-8"), hashlib.sha256).hexdigest()


def sign_ed25519(private_key: Ed25519PrivateKey, payload: str) -> str:
    """Base64 Ed25519 signature of ``payload`` (its UTF-8 bytes), as Binance takes it."""
    return base64.b64encode(private_key.sign(payload.encode("utf-8"))).decode("ascii")


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
    credentials: ApiCredentials,
    params: Sequence[tuple[str, str]],
    *,
    timestamp_ms: int,
    recv_window_ms: int | None,
) -> str:
    """The full signed REST query string: ``params``, ``recvWindow`` (if given),
    ``timestamp``, then ``&signature=...`` last (hex, or percent-encoded base64
    for an Ed25519 key). Send it byte for byte."""
    _check_reserved(params)
    _check_timing(timestamp_ms, recv_window_ms)
    full = list(params)
    if recv_window_ms is not None:
        full.append(("recvWindow", str(recv_window_ms)))
    full.append(("timestamp", str(timestamp_ms)))
    payload = encode_params(full)
    return f"{payload}&signature={_encode(credentials.sign(payload))}"


def signed_ws_params(
    credentials: ApiCredentials,
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
    full["signature"] = credentials.sign(ws_signature_payload(full))
    return full

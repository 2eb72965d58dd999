"""Coinbase Advanced Trade authentication: a CDP API key and the JWTs it signs. Pure, no I/O.

Coinbase's CDP keys authenticate every private REST request and every
WebSocket subscribe with a short-lived JWT (fact sheet 3.2; coinbase-advanced-py
``jwt_generator.build_jwt``, ``rest_base.set_headers``):

- header ``{"alg": "ES256" | "EdDSA", "typ": "JWT", "kid": <key name>, "nonce": <random hex>}``;
- claims ``{"sub": <key name>, "iss": "cdp", "nbf": now, "exp": now + 120}``, plus
  ``"uri": "<METHOD> <host><path>"`` for REST (no scheme, no query string); a
  WebSocket JWT has no ``uri``;
- sent as ``Authorization: Bearer <jwt>`` (REST) or the subscribe message's ``jwt``.

The key is an EC P-256 private key in PEM (ES256, what Coinbase issues by
default) or an Ed25519 key (PEM PKCS#8, or base64 of its 32-byte seed or
64-byte seed+public key, as the SDK reads it since 1.8.3). Never the legacy
HMAC-and-passphrase scheme of Coinbase Exchange.

The JWT is built here with ``cryptography`` alone (base64url JSON, and an
ES256 signature as the raw 64-byte ``r || s`` RFC 7518 asks for, not DER), so
the adapter needs no JWT library; the tests read what it builds with PyJWT,
an independent reader. The private key never appears in a repr, a log line or
an error: a key that does not load is a ``ConfigError`` naming the setting.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from dataclasses import dataclass
from typing import Any, TypeAlias

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from ..._exceptions import ConfigError

__all__ = [
    "JWT_LIFETIME",
    "CdpCredentials",
    "PrivateKey",
    "build_jwt",
    "jwt_uri",
    "load_private_key",
]

#: Seconds a JWT is valid (``exp - nbf``), as Coinbase's own generator makes them.
JWT_LIFETIME = 120

PrivateKey: TypeAlias = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def load_private_key(text: str, *, key: str = "private_key") -> PrivateKey:
    """The CDP key's private half from its text; a ``ConfigError`` naming ``key``
    (the setting it came from) if it does not load. The error never quotes it."""
    stripped = text.strip()
    loaded: object
    if stripped.startswith("-----BEGIN"):
        try:
            loaded = load_pem_private_key(stripped.encode("utf-8"), password=None)
        except (ValueError, TypeError, binascii.Error):
            raise ConfigError(
                "not an unencrypted PEM private key (a CDP key's EC P-256 "
                "'-----BEGIN EC PRIVATE KEY-----' block, or an Ed25519 PKCS#8 key)",
                key=key,
            ) from None
        except Exception as exc:  # noqa: BLE001 - cryptography's backend errors vary
            raise ConfigError(
                f"the PEM private key does not load ({type(exc).__name__})", key=key
            ) from None
    else:
        try:
            raw = base64.b64decode("".join(stripped.split()), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(
                "neither a PEM private key nor the base64 of an Ed25519 key", key=key
            ) from None
        if len(raw) not in (32, 64):
            raise ConfigError(
                f"a base64 Ed25519 key must decode to 32 or 64 bytes, not {len(raw)}", key=key
            )
        loaded = ed25519.Ed25519PrivateKey.from_private_bytes(raw[:32])
    if isinstance(loaded, ec.EllipticCurvePrivateKey):
        if not isinstance(loaded.curve, ec.SECP256R1):
            raise ConfigError(
                f"an EC key on {loaded.curve.name}: ES256 needs P-256 (secp256r1)", key=key
            )
        return loaded
    if isinstance(loaded, ed25519.Ed25519PrivateKey):
        return loaded
    raise ConfigError(
        f"a {type(loaded).__name__}: expected an EC P-256 or Ed25519 private key", key=key
    )


@dataclass(frozen=True, slots=True, repr=False)
class CdpCredentials:
    """A CDP API key: its name (``organizations/{org}/apiKeys/{id}``) and private key.

    The repr shows the key name only; the private key stays inside."""

    key_name: str
    private_key: PrivateKey

    def __post_init__(self) -> None:
        if not isinstance(self.key_name, str) or not self.key_name.strip():
            raise ValueError("CdpCredentials.key_name: must be a non-empty string")
        if not isinstance(self.private_key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
            raise ValueError("CdpCredentials.private_key: must be an EC or Ed25519 private key")

    @classmethod
    def from_text(
        cls, key_name: str, private_key: str, *, setting: str = "private_key"
    ) -> CdpCredentials:
        return cls(key_name, load_private_key(private_key, key=setting))

    def __repr__(self) -> str:
        return f"CdpCredentials(key_name={self.key_name!r}, algorithm={self.algorithm!r})"

    __str__ = __repr__

    @property
    def algorithm(self) -> str:
        return "EdDSA" if isinstance(self.private_key, ed25519.Ed25519PrivateKey) else "ES256"


def jwt_uri(method: str, host: str, path: str) -> str:
    """The ``uri`` claim: ``"<METHOD> <host><path>"``, no scheme, no query string.

    ``host`` is the URL's authority as sent (``api.coinbase.com``, or
    ``127.0.0.1:8443`` for a local venue)."""
    return f"{method.upper()} {host}{path.split('?', 1)[0]}"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=False).encode("utf-8")


def build_jwt(
    credentials: CdpCredentials,
    *,
    now: int,
    uri: str | None = None,
    nonce: str | None = None,
) -> str:
    """A signed JWT for one REST request (``uri`` given) or one WebSocket message.

    ``now`` is the venue's time in epoch seconds (``nbf``; ``exp`` is 120 s
    later); ``nonce`` defaults to 32 random hex characters, as the SDK's."""
    header = {
        "alg": credentials.algorithm,
        "typ": "JWT",
        "kid": credentials.key_name,
        "nonce": secrets.token_hex() if nonce is None else nonce,
    }
    claims: dict[str, Any] = {
        "sub": credentials.key_name,
        "iss": "cdp",
        "nbf": int(now),
        "exp": int(now) + JWT_LIFETIME,
    }
    if uri is not None:
        claims["uri"] = uri
    signing_input = f"{_b64url(_json(header))}.{_b64url(_json(claims))}".encode("ascii")
    key = credentials.private_key
    if isinstance(key, ed25519.Ed25519PrivateKey):
        signature = key.sign(signing_input)
    else:
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return f"{signing_input.decode('ascii')}.{_b64url(signature)}"

"""CDP API keys for the local Coinbase venue: make a key pair, verify a request's JWT.

Coinbase's CDP keys are a name (``organizations/{org_id}/apiKeys/{key_id}``)
and a private key: EC P-256 in PEM (signing ES256) or Ed25519 (EdDSA). A
client signs one short-lived JWT per REST request (claims ``sub`` = the key
name, ``iss``, ``nbf``, ``exp`` two minutes later, ``uri`` = ``"METHOD
host/path"``; header ``kid`` = the key name and a random ``nonce``) and one
per WebSocket subscribe message (no ``uri``). The venue holds only public
keys and checks everything with ``cryptography``, because a fake that
accepts any token would pass an adapter that signs wrongly.

``iss`` is ``"cdp"`` in Coinbase's own SDK (``coinbase/jwt_generator.py``)
and ``"coinbase-cloud"`` in ccxt's ES256 tokens (with ``aud``
``["retail_rest_api_proxy"]``), which Coinbase accepts; both are accepted here.
ccxt's EdDSA tokens carry ``uris`` (a list) instead of ``uri``.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

__all__ = [
    "JWT_ISSUERS",
    "CdpKey",
    "JwtRefused",
    "PublicKey",
    "generate_cdp_key",
    "load_public_key",
    "verify_jwt",
]

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

JWT_ISSUERS = frozenset({"cdp", "coinbase-cloud"})
"""``cdp``: Coinbase's SDK and docs; ``coinbase-cloud``: ccxt's ES256 tokens."""

_MAX_LIFETIME_S = 120
"""Coinbase: "The JWT expires after 2 minutes"; a token valid for longer is refused."""


@dataclass(frozen=True, slots=True)
class CdpKey:
    """A CDP API key pair as Coinbase's console hands it out (test keys only).

    ``private_key_pem`` is the secret a client signs with; the venue only
    ever needs ``public_key_pem``. The repr names the key and never shows
    the private half.
    """

    name: str
    private_key_pem: str
    public_key_pem: str

    def __repr__(self) -> str:
        return f"CdpKey(name={self.name!r})"

    def to_json(self) -> str:
        """The key file Coinbase's console downloads: ``{"name": ..., "privateKey": ...}``.

        ``coinbase.rest.RESTClient(key_file=path)`` reads exactly this.
        """
        return json.dumps({"name": self.name, "privateKey": self.private_key_pem})


def generate_cdp_key(org_id: str | None = None, key_id: str | None = None) -> CdpKey:
    """A fresh EC P-256 CDP key named ``organizations/{org_id}/apiKeys/{key_id}``.

    Ids default to random UUIDs. The private key is PEM in the SEC1 form
    (``-----BEGIN EC PRIVATE KEY-----``) that Coinbase issues.
    """
    org = org_id or str(uuid.uuid4())
    key = key_id or str(uuid.uuid4())
    private = ec.generate_private_key(ec.SECP256R1())
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return CdpKey(f"organizations/{org}/apiKeys/{key}", private_pem, public_pem)


def load_public_key(pem: str | bytes) -> PublicKey:
    """An EC P-256 or Ed25519 public key from PEM; ``ValueError`` for anything else."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as error:
        raise ValueError(f"not a PEM public key: {error}") from error
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise ValueError(f"a CDP key is EC P-256 or Ed25519, not {type(key).__name__}")


class JwtRefused(Exception):
    """Why a JWT was refused (for the venue's log; the client only hears 401)."""


def _b64url(segment: str) -> bytes:
    padded = segment + "=" * (-len(segment) % 4)
    try:
        return base64.urlsafe_b64decode(padded.encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError) as error:
        raise JwtRefused("a segment is not base64url") from error


def _json_object(segment: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64url(segment))
    except ValueError as error:
        raise JwtRefused(f"the {what} is not JSON") from error
    if not isinstance(value, dict):
        raise JwtRefused(f"the {what} is not a JSON object")
    return value


def _check_signature(key: PublicKey, alg: object, signed: bytes, signature: bytes) -> None:
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            if alg != "ES256":
                raise JwtRefused(f"alg {alg!r} for an EC key (ES256 expected)")
            if len(signature) != 64:
                raise JwtRefused("an ES256 signature is 64 bytes")
            der = encode_dss_signature(
                int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            )
            key.verify(der, signed, ec.ECDSA(hashes.SHA256()))
        else:
            if alg != "EdDSA":
                raise JwtRefused(f"alg {alg!r} for an Ed25519 key (EdDSA expected)")
            key.verify(signature, signed)
    except InvalidSignature as error:
        raise JwtRefused("bad signature") from error


def verify_jwt(token: str, keys: Mapping[str, PublicKey], now_s: int, *, uri: str | None) -> str:
    """The key name that signed ``token``, or :class:`JwtRefused` saying why not.

    ``uri`` is what a REST token must claim (``"GET host:port/api/v3/..."``);
    None for a WebSocket token, which carries none.
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise JwtRefused("not a JWS compact token")
    header = _json_object(parts[0], "header")
    claims = _json_object(parts[1], "payload")
    name = claims.get("sub")
    if not isinstance(name, str) or name not in keys:
        raise JwtRefused("sub names no registered key")
    if header.get("kid") != name:
        raise JwtRefused("kid differs from sub")
    if claims.get("iss") not in JWT_ISSUERS:
        raise JwtRefused(f"iss {claims.get('iss')!r}")
    nbf, exp = claims.get("nbf"), claims.get("exp")
    if not isinstance(nbf, int) or not isinstance(exp, int):
        raise JwtRefused("nbf and exp must be integers")
    if now_s < nbf:
        raise JwtRefused("not valid yet (nbf)")
    if now_s >= exp:
        raise JwtRefused("expired")
    if exp - nbf > _MAX_LIFETIME_S:
        raise JwtRefused(f"valid for {exp - nbf} s, more than {_MAX_LIFETIME_S}")
    if uri is not None:
        claimed = claims.get("uri")
        listed = claims.get("uris")
        if claimed != uri and not (isinstance(listed, list) and uri in listed):
            raise JwtRefused("uri does not match the request")
    _check_signature(
        keys[name],
        header.get("alg"),
        f"{parts[0]}.{parts[1]}".encode("ascii"),
        _b64url(parts[2]),
    )
    return name

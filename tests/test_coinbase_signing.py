"""Coinbase CDP authentication: the JWTs the adapter builds, read by independent readers.

The adapter signs with ``cryptography`` alone; these tests decode and verify
what it builds with PyJWT (a separate JOSE implementation) and compare it,
field by field, with what Coinbase's own SDK (coinbase-advanced-py's
``jwt_generator``) builds for the same key. A key that does not load is a
``ConfigError`` naming the setting, and never shows the key.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import jwt
import pytest
from coinbase import jwt_generator
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from tradenode import ConfigError, parse_config
from tradenode.brokers.coinbase import CdpCredentials, build_jwt, jwt_uri

KEY_NAME = "organizations/0f1e2d3c/apiKeys/4b5a6978"
NOW = 1_700_000_000


def ec_pem(curve: ec.EllipticCurve | None = None) -> str:
    key = ec.generate_private_key(curve or ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,  # "BEGIN EC PRIVATE KEY", as CDP issues
        serialization.NoEncryption(),
    ).decode()


def public_pem(private_pem: str) -> bytes:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def header_of(token: str) -> dict[str, object]:
    header: dict[str, object] = jwt.get_unverified_header(token)
    return header


def test_a_rest_jwt_verifies_with_pyjwt_and_carries_coinbases_claims() -> None:
    pem = ec_pem()
    credentials = CdpCredentials.from_text(KEY_NAME, pem)
    uri = jwt_uri("GET", "api.coinbase.com", "/api/v3/brokerage/accounts")
    token = build_jwt(credentials, now=NOW, uri=uri, nonce="ab" * 16)
    claims = jwt.decode(
        token,
        public_pem(pem),
        algorithms=["ES256"],
        issuer="cdp",
        options={"verify_nbf": False, "verify_exp": False},
    )
    assert claims == {
        "sub": KEY_NAME,
        "iss": "cdp",
        "nbf": NOW,
        "exp": NOW + 120,
        "uri": "GET api.coinbase.com/api/v3/brokerage/accounts",
    }
    assert header_of(token) == {"alg": "ES256", "typ": "JWT", "kid": KEY_NAME, "nonce": "ab" * 16}


def test_a_websocket_jwt_has_no_uri_and_a_fresh_nonce_each_time() -> None:
    pem = ec_pem()
    credentials = CdpCredentials.from_text(KEY_NAME, pem)
    first, second = build_jwt(credentials, now=NOW), build_jwt(credentials, now=NOW)
    assert first != second
    for token in (first, second):
        claims = jwt.decode(
            token,
            public_pem(pem),
            algorithms=["ES256"],
            options={"verify_nbf": False, "verify_exp": False},
        )
        assert "uri" not in claims and claims["sub"] == KEY_NAME
        nonce = header_of(token)["nonce"]
        assert isinstance(nonce, str) and len(nonce) == 64
    assert header_of(first)["nonce"] != header_of(second)["nonce"]


def test_the_signature_is_raw_r_and_s_not_der() -> None:
    """RFC 7518 ES256: 64 bytes, r then s; a DER signature would be refused by Coinbase."""
    token = build_jwt(CdpCredentials.from_text(KEY_NAME, ec_pem()), now=NOW)
    signature = token.rsplit(".", 1)[1]
    assert len(base64.urlsafe_b64decode(signature + "==")) == 64


def test_a_tampered_or_foreign_token_does_not_verify() -> None:
    pem = ec_pem()
    token = build_jwt(CdpCredentials.from_text(KEY_NAME, pem), now=NOW, uri="GET h/p")
    head, body, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["uri"] = "POST h/p"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    options = {"verify_nbf": False, "verify_exp": False}
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            f"{head}.{forged}.{signature}", public_pem(pem), algorithms=["ES256"], options=options
        )
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, public_pem(ec_pem()), algorithms=["ES256"], options=options)


def test_same_header_and_claims_as_coinbases_own_generator() -> None:
    """coinbase-advanced-py's ``build_rest_jwt`` for the same key and URI: the same
    header fields and claims (times and nonce aside)."""
    pem = ec_pem()
    uri = jwt_generator.format_jwt_uri("POST", "/api/v3/brokerage/orders")
    theirs = jwt_generator.build_rest_jwt(uri, KEY_NAME, pem)
    ours = build_jwt(
        CdpCredentials.from_text(KEY_NAME, pem),
        now=NOW,
        uri=jwt_uri("POST", "api.coinbase.com", "/api/v3/brokerage/orders"),
    )
    assert set(header_of(ours)) == set(header_of(theirs))
    assert {k: v for k, v in header_of(ours).items() if k != "nonce"} == {
        k: v for k, v in header_of(theirs).items() if k != "nonce"
    }
    options = {"verify_nbf": False, "verify_exp": False}
    their_claims = jwt.decode(theirs, public_pem(pem), algorithms=["ES256"], options=options)
    our_claims = jwt.decode(ours, public_pem(pem), algorithms=["ES256"], options=options)
    assert set(our_claims) == set(their_claims)
    assert (
        our_claims["uri"] == their_claims["uri"] == "POST api.coinbase.com/api/v3/brokerage/orders"
    )
    assert their_claims["exp"] - their_claims["nbf"] == our_claims["exp"] - our_claims["nbf"] == 120


def test_jwt_uri_has_no_scheme_and_no_query() -> None:
    assert jwt_uri(
        "get", "127.0.0.1:8443", "/api/v3/brokerage/orders/historical/batch?limit=1"
    ) == ("GET 127.0.0.1:8443/api/v3/brokerage/orders/historical/batch")


@pytest.mark.parametrize("form", ["pem", "seed", "seed+public"])
def test_ed25519_keys_sign_eddsa_as_the_sdk_reads_them(form: str) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    seed = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    raw_public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    text = {
        "pem": key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        "seed": base64.b64encode(seed).decode(),
        "seed+public": base64.b64encode(seed + raw_public).decode(),
    }[form]
    credentials = CdpCredentials.from_text(KEY_NAME, text)
    assert credentials.algorithm == "EdDSA"
    token = build_jwt(credentials, now=NOW, uri="GET h/p")
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = jwt.decode(
        token, public, algorithms=["EdDSA"], options={"verify_nbf": False, "verify_exp": False}
    )
    assert claims["uri"] == "GET h/p" and header_of(token)["alg"] == "EdDSA"
    # The SDK reads the same text as the same key.
    theirs = jwt_generator.build_rest_jwt("GET h/p", KEY_NAME, text)
    assert jwt.decode(
        theirs, public, algorithms=["EdDSA"], options={"verify_nbf": False, "verify_exp": False}
    )


PEM = ec_pem()


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("-----BEGIN EC PRIVATE KEY-----\nbm90IGEga2V5\n-----END EC PRIVATE KEY-----\n", "PEM"),
        ("not a key at all", "base64"),
        (base64.b64encode(b"x" * 20).decode(), "32 or 64 bytes"),
        (ec_pem(ec.SECP384R1()), "P-256"),
        (PEM.replace("\n", "\n ", 3)[:-40] + "\n-----END EC PRIVATE KEY-----\n", "PEM"),
    ],
)
def test_a_key_that_does_not_load_is_a_config_error_naming_the_setting(text: str, why: str) -> None:
    with pytest.raises(ConfigError) as raised:
        CdpCredentials.from_text(KEY_NAME, text)
    assert raised.value.key == "private_key"
    assert why in str(raised.value)
    body_lines = [line for line in text.splitlines() if line and "-----" not in line]
    for line in body_lines:
        if len(line) >= 8:
            assert line.strip() not in str(raised.value)


def yaml_with(section: str) -> str:
    return f"""
node: {{name: n}}
venues:
  - name: cb
    kind: coinbase
    coinbase:
      api_key_name: "{KEY_NAME}"
{section}
"""


def test_a_bad_pem_in_the_config_is_a_config_error_naming_the_key_never_a_traceback() -> None:
    broken = "-----BEGIN EC PRIVATE KEY-----\\nMHcCAQEEIBadBadBadBadBad\\n-----END EC PRIVATE KEY-----\\n"
    with pytest.raises(ConfigError) as raised:
        parse_config(yaml_with(f'      private_key: "{broken}"'))
    message = str(raised.value)
    assert "venues[0].coinbase.private_key" in message
    assert "MHcCAQEEIBadBadBadBadBad" not in message


def test_a_missing_key_file_is_a_config_error_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(yaml_with(f"      private_key_path: {tmp_path / 'absent.pem'}"))
    assert "private_key_path" in str(raised.value)


def test_exactly_one_key_source(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_text(PEM)
    quoted = json.dumps(PEM)
    with pytest.raises(ConfigError, match="exactly one"):
        parse_config(yaml_with(f"      private_key: {quoted}\n      private_key_path: {path}"))
    with pytest.raises(ConfigError, match="exactly one"):
        parse_config(yaml_with(""))
    config = parse_config(yaml_with(f"      private_key_path: {path}"))
    assert PEM not in repr(config) and PEM not in str(config)


def test_credentials_never_show_the_private_key() -> None:
    credentials = CdpCredentials.from_text(KEY_NAME, PEM)
    for text in (repr(credentials), str(credentials), f"{credentials}"):
        assert "PRIVATE" not in text and KEY_NAME in text
    assert all(line not in repr(credentials) for line in PEM.splitlines()[1:-1])

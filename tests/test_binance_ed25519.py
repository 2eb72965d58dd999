"""Ed25519 API keys: the adapter's signing, its session logon, a node trading with one.

Signing is checked against vectors that do not come from our code: RFC 8032's
own test vectors, and Binance's documented signature payloads signed with the
``cryptography`` library directly. Every signature is then verified by
independent implementations: ``cryptography``, PyNaCl (libsodium),
pycryptodome (what Binance's own ``binance-connector`` signs with) and the
``openssl`` command line when the machine has it.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
import trio
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from tradenode import BrokerConnectionError, ConfigError, Node, parse_config
from tradenode.brokers.binance import (
    BinanceCredentials,
    Ed25519Credentials,
    signed_query,
    signed_ws_params,
)

# The raw signing primitives are private: checked here against Binance's documented examples.
from tradenode.brokers.binance._signing import sign_ed25519, ws_signature_payload
from tradenode.messages import OrderCanceled, OrderFilled, OrderStatus, OrderType, Side
from tradenode.supervision import ManualClock
from tradenode.testing.venues import BinanceVenue

from ._node_helpers import Harness

D = Decimal

# RFC 8032, section 7.1, TEST 1 and TEST 2.
RFC_SECRET_1 = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
RFC_PUBLIC_1 = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
RFC_SIGNATURE_1 = (
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e"
    "39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)
RFC_SECRET_2 = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"
RFC_SIGNATURE_2 = (
    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f"
    "3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
)

# The RFC TEST 1 key as the PKCS#8 PEM Binance's key generator writes.
PRIVATE_PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n"
    "-----END PRIVATE KEY-----\n"
)
PUBLIC_PEM = (
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n"
    "-----END PUBLIC KEY-----\n"
)
PRIVATE_BODY = "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g"

# web-socket-api.md "SIGNED request example (HMAC)": the documented order.place
# params and signature payload (sorted, not percent-encoded).
DOC_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
DOC_WS_PAYLOAD = (
    f"apiKey={DOC_KEY}&newOrderRespType=ACK&price=52000.00&quantity=0.01000000"
    "&recvWindow=100&side=SELL&symbol=BTCUSDT&timeInForce=GTC&timestamp=1645423376532"
    "&type=LIMIT"
)
# rest-api.md "SIGNED Endpoint Examples": the documented query string.
DOC_QUERY = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
    "&recvWindow=5000&timestamp=1499827319559"
)
# Made once with ``cryptography`` alone: base64(Ed25519(RFC TEST 1 key, payload)).
WS_VECTOR = (
    "BjL7LLyIGJ75fVzLx0zhi4LL5/b/BPg/unL7Qpav0JdUSTn0ihLXON8imGUgCTrcbHDECyGwsL+aZy9+RYobBw=="
)
REST_VECTOR = (
    "3fhuDZ9nYMviDQ5OEtJBJS11jUZDTRzRQ+TQMarm+LErFiJvUiVPQjTzDoWZQe4miPX+yHk1v/Z7TWLYjIbmCA=="
)

ED_KEY = "tradenode-ed25519-node-key"


def rfc_key(secret_hex: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(secret_hex))


def credentials() -> Ed25519Credentials:
    return Ed25519Credentials.from_pem(DOC_KEY, PRIVATE_PEM)


# -- independent verifiers -----------------------------------------------------------------


def verify_with_cryptography(public_pem: str, message: bytes, signature: bytes) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    key = load_pem_public_key(public_pem.encode())
    assert isinstance(key, Ed25519PublicKey)
    key.verify(signature, message)  # raises InvalidSignature


def verify_with_pynacl(public_hex: str, message: bytes, signature: bytes) -> None:
    nacl_signing = pytest.importorskip("nacl.signing")
    nacl_signing.VerifyKey(bytes.fromhex(public_hex)).verify(message, signature)


def verify_with_pycryptodome(public_pem: str, message: bytes, signature: bytes) -> None:
    from Crypto.PublicKey import ECC
    from Crypto.Signature import eddsa

    eddsa.new(ECC.import_key(public_pem), "rfc8032").verify(message, signature)


def verify_with_openssl(tmp: Path, public_pem: str, message: bytes, signature: bytes) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        return
    (tmp / "pub.pem").write_text(public_pem)
    (tmp / "message").write_bytes(message)
    (tmp / "signature").write_bytes(signature)
    result = subprocess.run(
        [
            openssl,
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            str(tmp / "pub.pem"),
            "-rawin",
            "-in",
            str(tmp / "message"),
            "-sigfile",
            str(tmp / "signature"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Signature Verified Successfully" in result.stdout


def verify_everywhere(tmp: Path, message: bytes, signature_b64: str) -> None:
    signature = base64.b64decode(signature_b64, validate=True)
    verify_with_cryptography(PUBLIC_PEM, message, signature)
    verify_with_pynacl(RFC_PUBLIC_1, message, signature)
    verify_with_pycryptodome(PUBLIC_PEM, message, signature)
    verify_with_openssl(tmp, PUBLIC_PEM, message, signature)


# -- signing -------------------------------------------------------------------------------


def test_signing_reproduces_the_rfc_8032_test_vectors() -> None:
    one = base64.b64decode(sign_ed25519(rfc_key(RFC_SECRET_1), ""))
    assert one.hex() == RFC_SIGNATURE_1
    two = base64.b64decode(sign_ed25519(rfc_key(RFC_SECRET_2), "r"))  # the byte 0x72
    assert two.hex() == RFC_SIGNATURE_2


def test_the_pem_key_is_the_rfc_key() -> None:
    creds = credentials()
    raw = creds.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert raw.hex() == RFC_PUBLIC_1
    assert creds.public_key_pem() == PUBLIC_PEM


def test_websocket_api_params_sign_binances_documented_payload(tmp_path: Path) -> None:
    params = signed_ws_params(
        credentials(),
        {
            "symbol": "BTCUSDT",
            "side": "SELL",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.01000000",
            "price": "52000.00",
            "newOrderRespType": "ACK",
        },
        timestamp_ms=1645423376532,
        recv_window_ms=100,
    )
    assert ws_signature_payload(params) == DOC_WS_PAYLOAD
    assert params["signature"] == WS_VECTOR
    verify_everywhere(tmp_path, DOC_WS_PAYLOAD.encode(), params["signature"])


def test_rest_query_signs_the_documented_query_and_percent_encodes_the_signature(
    tmp_path: Path,
) -> None:
    query = signed_query(
        credentials(),
        [
            ("symbol", "LTCBTC"),
            ("side", "BUY"),
            ("type", "LIMIT"),
            ("timeInForce", "GTC"),
            ("quantity", "1"),
            ("price", "0.1"),
        ],
        timestamp_ms=1499827319559,
        recv_window_ms=5000,
    )
    payload, _, signature = query.partition("&signature=")
    assert payload == DOC_QUERY
    assert signature == quote(REST_VECTOR, safe="")
    assert "+" not in signature and "/" not in signature and "=" not in signature
    assert unquote(signature) == REST_VECTOR
    verify_everywhere(tmp_path, DOC_QUERY.encode(), REST_VECTOR)


def test_a_non_ascii_payload_is_signed_as_utf8(tmp_path: Path) -> None:
    payload = "symbol=\uff11\uff12\uff13\uff14\uff15\uff16&timestamp=1"
    signature = credentials().sign(payload)
    verify_everywhere(tmp_path, payload.encode("utf-8"), signature)


def test_hmac_credentials_sign_as_before() -> None:
    hmac_creds = BinanceCredentials(
        DOC_KEY, "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
    )
    assert hmac_creds.key_type == "hmac" and credentials().key_type == "ed25519"
    assert hmac_creds.sign(DOC_QUERY) == (
        "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    )


# -- secrets -------------------------------------------------------------------------------


def test_the_private_key_never_shows_in_a_repr_or_an_error() -> None:
    creds = credentials()
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert text == "Ed25519Credentials(api_key='vmPU…h8A')" or "vmPU…h8A" in text
        assert PRIVATE_BODY not in text and RFC_SECRET_1 not in text
    broken = PRIVATE_PEM.replace("MC4CAQAw", "MC4CAQAx")
    for bad in (broken, "nothing", PRIVATE_BODY):
        with pytest.raises(ValueError) as caught:
            Ed25519Credentials.from_pem(ED_KEY, bad)
        shown = "".join(traceback.format_exception(caught.value))
        assert PRIVATE_BODY[8:40] not in shown
        assert caught.value.__cause__ is None and caught.value.__suppress_context__
    ec = generate_private_key(SECP256R1()).private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    with pytest.raises(ValueError, match="not an Ed25519 private key"):
        Ed25519Credentials.from_pem(ED_KEY, ec)
    with pytest.raises(ValueError, match="non-empty"):
        Ed25519Credentials.from_pem(" ", PRIVATE_PEM)


def test_an_encrypted_key_needs_its_password() -> None:
    encrypted = rfc_key(RFC_SECRET_1).private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(b"pass-phrase")
    )
    creds = Ed25519Credentials.from_pem(ED_KEY, encrypted, password="pass-phrase")
    assert creds.public_key_pem() == PUBLIC_PEM
    with pytest.raises(ValueError, match="password"):
        Ed25519Credentials.from_pem(ED_KEY, encrypted)


# -- the node, through the local venue --------------------------------------------------------

NODE_CONFIG = """
node: {{name: ednode, seed: 3, intensity: {{max_restarts: 50, within_seconds: 60}}}}
broker_backoff: {{min_seconds: 0.5, max_seconds: 2, random_factor: 0}}
venues:
  - name: binance
    kind: binance
    binance:
      environment: custom
      api_key: {key}
      key_type: ed25519
      private_key_path: {path}
      rest_url: {rest}
      ws_api_url: {ws_api}
      stream_url: {stream}
      symbols: [BTCUSDT]
    breaker: {{failure_threshold: 3, open_timeout: 10, request_timeout: 5, max_retries: 2}}
oms: {{ack_timeout: 30}}
"""


@contextmanager
def ed25519_node(venue: BinanceVenue, clock: ManualClock, key_file: Path) -> Iterator[Harness]:
    text = NODE_CONFIG.format(
        key=ED_KEY,
        path=key_file,
        rest=venue.rest_url,
        ws_api=venue.ws_api_url,
        stream=venue.stream_url,
    )
    node = Node(parse_config(text), clock=clock)
    node.start()
    try:
        yield Harness(node, clock)
    finally:
        node.stop(timeout=20)


def limit(side: Side, price: str, quantity: str) -> Any:
    return lambda ctx: ctx.submit_order(
        "BTCUSDT", side, D(quantity), order_type=OrderType.LIMIT, price=D(price), venue="binance"
    )


def test_a_node_with_an_ed25519_key_logs_on_places_fills_and_cancels(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key_file = tmp_path / "binance-ed25519.pem"
    key_file.write_text(PRIVATE_PEM)
    clock = ManualClock()
    caplog.set_level(logging.DEBUG)
    with (
        BinanceVenue(
            seed=11,
            clock=lambda: clock.time_ns() // 1_000_000,
            ed25519_public_keys={ED_KEY: PUBLIC_PEM},
        ) as venue,
        ed25519_node(venue, clock, key_file) as h,
    ):
        filled = h.do(limit(Side.BUY, "49900.00", "0.5"))
        h.wait_status(filled, OrderStatus.ACCEPTED)
        venue.set_price("BTCUSDT", D("49800.00"))
        h.wait_status(filled, OrderStatus.FILLED)
        (fill,) = h.wait_for(OrderFilled, filled)
        assert (fill.last_quantity, fill.last_price) == (D("0.5"), D("49900.00"))
        (trade,) = venue.trades()
        assert fill.execution_id == f"binance-BTCUSDT-{trade.trade_id}"
        resting = h.do(limit(Side.BUY, "48000.00", "0.1"))
        h.wait_status(resting, OrderStatus.ACCEPTED)
        h.do(lambda ctx: ctx.cancel_order(resting))
        h.wait_status(resting, OrderStatus.CANCELED)
        h.wait_for(OrderCanceled, resting)
        h.sync()
        assert {o.client_order_id: o.status for o in venue.orders()} == {
            filled: "FILLED",
            resting: "CANCELED",
        }
        calls = venue.calls()
    # The broker logged its WebSocket API session on and subscribed through it,
    # placed and cancelled over that logged-on connection (order entry defaults to
    # it), and signed every REST request (reconciliation) with Ed25519.
    assert calls["session.logon"] == 1
    assert calls["userDataStream.subscribe"] == 1
    assert "userDataStream.subscribe.signature" not in calls
    assert calls["order.place"] == 2 and calls["order.cancel"] == 1
    assert "POST order" not in calls and "DELETE order" not in calls
    assert calls["GET account"] >= 1
    logged = caplog.text
    assert "logged on with Ed25519 key" in logged
    assert PRIVATE_BODY not in logged and PRIVATE_BODY[8:40] not in logged


def test_a_refused_logon_fails_the_connection_attempt(tmp_path: Path) -> None:
    """A key the venue does not know as Ed25519: session.logon is refused (-2015)."""
    key_file = tmp_path / "key.pem"
    key_file.write_text(PRIVATE_PEM)
    with BinanceVenue(seed=1) as venue:
        from tradenode.brokers.binance import BinanceEndpoints

        # The session is private: this test drives it alone, without an actor.
        from tradenode.brokers.binance._session import BinanceSession

        session = BinanceSession(
            "binance",
            Ed25519Credentials.from_pem(ED_KEY, key_file.read_text()),
            BinanceEndpoints(venue.rest_url, venue.ws_api_url, venue.stream_url),
            deliver=lambda _event: None,
            time_ms=venue.exchange.now,
        )

        refused: list[BrokerConnectionError] = []

        async def start() -> None:
            async with trio.open_nursery() as nursery:
                try:
                    await nursery.start(session.serve)
                except BrokerConnectionError as error:
                    refused.append(error)

        trio.run(start)
        assert [str(error).split(" [")[0] for error in refused] == [
            "session.logon refused: -2015 Invalid API-key, IP, or permissions for action."
        ]
        assert venue.calls()["session.logon"] == 1
        assert "userDataStream.subscribe" not in venue.calls()


# -- the command line --------------------------------------------------------------------------


def test_venue_binance_registers_an_ed25519_key_from_a_pem_file(tmp_path: Path) -> None:
    public = tmp_path / "public.pem"
    public.write_text(PUBLIC_PEM)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tradenode",
            "venue",
            "binance",
            "--ed25519-key",
            f"{ED_KEY}={public}",
            "--tick-interval",
            "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        urls = json.loads(process.stdout.readline())

        async def logon() -> dict[str, Any]:
            from trio_websocket import open_websocket_url

            async with open_websocket_url(urls["ws_api"]) as ws:
                await ws.send_message(json.dumps({"id": 1, "method": "time"}))
                now = json.loads(await ws.get_message())["result"]["serverTime"]
                params = {"apiKey": ED_KEY, "timestamp": now}
                payload = "&".join(f"{k}={params[k]}" for k in sorted(params))
                signature = base64.b64encode(rfc_key(RFC_SECRET_1).sign(payload.encode()))
                request = {"id": 2, "method": "session.logon", "params": params}
                request["params"] = {**params, "signature": signature.decode()}
                await ws.send_message(json.dumps(request))
                answer: dict[str, Any] = json.loads(await ws.get_message())
                return answer

        answer = trio.run(logon)
        assert answer["status"] == 200, answer
        assert answer["result"]["apiKey"] == ED_KEY
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err


@pytest.mark.parametrize(
    ("argument", "message"),
    [("no-equals-sign", "API_KEY=PEM_PATH"), ("k=/no/such/file.pem", "No such file")],
)
def test_venue_binance_refuses_a_bad_ed25519_key_option(argument: str, message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tradenode", "venue", "binance", "--ed25519-key", argument],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert message in result.stderr


def test_venue_binance_refuses_a_file_that_is_not_an_ed25519_public_key(tmp_path: Path) -> None:
    private = tmp_path / "private.pem"
    private.write_text(PRIVATE_PEM)  # the private half is not what the venue takes
    result = subprocess.run(
        [sys.executable, "-m", "tradenode", "venue", "binance", "--ed25519-key", f"k={private}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--ed25519-key" in result.stderr
    assert PRIVATE_BODY not in result.stderr + result.stdout


# -- configuration -----------------------------------------------------------------------------


def config_text(binance: str) -> str:
    return "venues:\n  - name: bin\n    kind: binance\n    binance:\n" + "".join(
        f"      {line}\n" for line in binance.strip().splitlines()
    )


def test_config_takes_an_ed25519_key_as_text_or_file(tmp_path: Path) -> None:
    key_file = tmp_path / "key.pem"
    key_file.write_text(PRIVATE_PEM)
    from_file = parse_config(
        config_text(f"api_key: k\nkey_type: ed25519\nprivate_key_path: {key_file}")
    )
    settings = from_file.venues[0].settings
    assert settings is not None and settings.key_type == "ed25519"
    assert settings.private_key_path == key_file and settings.api_secret is None
    from_env = parse_config(
        config_text("api_key: k\nkey_type: ed25519\nprivate_key: ${PEM}"),
        environ={"PEM": PRIVATE_PEM},
    )
    text_settings = from_env.venues[0].settings
    assert text_settings is not None and text_settings.private_key is not None
    assert PRIVATE_BODY not in repr(from_env) and PRIVATE_BODY not in str(text_settings)
    hmac = parse_config(config_text("api_key: k\napi_secret: s"))
    assert hmac.venues[0].settings is not None and hmac.venues[0].settings.key_type == "hmac"


def test_a_config_key_that_is_not_ed25519_is_refused_without_showing_it(tmp_path: Path) -> None:
    ec_file = tmp_path / "ec.pem"
    ec_file.write_bytes(
        generate_private_key(SECP256R1()).private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        )
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(config_text(f"api_key: k\nkey_type: ed25519\nprivate_key_path: {ec_file}"))
    assert caught.value.key == "venues[0].binance.private_key_path"
    assert "not an Ed25519 private key" in str(caught.value)

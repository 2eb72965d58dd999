"""The control API on a Unix socket and over TLS (issue #19: "on 127.0.0.1 by default,
or a Unix socket ... TLS or a non-loopback bind only when configured explicitly"),
with ``tradenode ctl`` talking to each."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import socket
import ssl
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tradenode import ConfigError, Node, parse_config

# The `tradenode` command itself, as the shell runs it (the click group has no public name).
from tradenode._cli import main
from tradenode.actors import GetRiskStatus
from tradenode.control import ControlConfig
from tradenode.supervision import ManualClock

from ._node_helpers import node_from_file

TOKEN = "tok-transport-0123456789abcdef"

BASE = """
node: {{name: tnode, seed: 5}}
venues:
  - {{name: paper}}
oms: {{ack_timeout: 30}}
journal: {{path: {journal}, fsync: none}}
control:
  enabled: true
  tokens: {{ops: "${{T_TOKEN}}"}}
"""


@contextmanager
def running(config_file: Path, clock: ManualClock) -> Iterator[Node]:
    with node_from_file(config_file, clock, {"T_TOKEN": TOKEN}) as h:
        yield h.node


def ctl(*args: str) -> tuple[int, str]:
    env = {"TRADENODE_TOKEN": TOKEN, "T_TOKEN": TOKEN}
    result = CliRunner().invoke(main, ["ctl", *args], env=env)
    return result.exit_code, result.output


# -- a Unix socket -----------------------------------------------------------------------------


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path: a Unix socket's path is at most 107 bytes."""
    with tempfile.TemporaryDirectory(prefix="tn-") as where:
        yield Path(where)


def test_a_node_on_a_unix_socket_answers_ctl_and_no_tcp_port(
    short_dir: Path, clock: ManualClock
) -> None:
    sock = short_dir / "ctl.sock"
    config_file = short_dir / "node.yaml"
    config_file.write_text(BASE.format(journal=short_dir / "journal") + f"  unix_socket: {sock}\n")
    with running(config_file, clock) as node:
        assert node.control_url == f"unix:{sock}"
        mode = sock.lstat().st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600  # this user only
        # Found through the config (the URL file beside the journal) and by --url.
        code, out = ctl("--config", str(config_file), "--json", "status")
        assert code == 0, out
        status = json.loads(out)
        assert status["node"] == "tnode" and status["venues"]["paper"]["connected"] is True
        code, out = ctl("--url", f"unix:{sock}", "risk")
        assert code == 0 and "ACTIVE" in out, out
        # Actions still need the token, and work over the socket.
        code, out = ctl("--url", f"unix:{sock}", "halt", "--reason", "over the socket")
        assert code == 0, out
        assert node.risk.ask(GetRiskStatus(), 10)["state"] == "HALTED"
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock))) as client:
            refused = client.post("http://localhost/v1/trading-state", json={"state": "ACTIVE"})
            assert refused.status_code == 401
        assert node.risk.ask(GetRiskStatus(), 10)["state"] == "HALTED"
    assert not sock.exists()  # removed when the node stops


def test_a_stale_socket_file_is_replaced_and_other_files_are_not(
    short_dir: Path, clock: ManualClock
) -> None:
    sock = short_dir / "ctl.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(sock))
    stale.close()  # a socket file nobody listens on (a node that was killed)
    config_file = short_dir / "node.yaml"
    config_file.write_text(BASE.format(journal=short_dir / "journal") + f"  unix_socket: {sock}\n")
    with running(config_file, clock):
        code, out = ctl("--url", f"unix:{sock}", "--json", "risk")
        assert code == 0 and json.loads(out)["state"] == "ACTIVE"
        # A second node on the same socket is refused: the first one still serves there.
        other = BASE.format(journal=short_dir / "journal2") + f"  unix_socket: {sock}\n"
        second = Node(parse_config(other, environ={"T_TOKEN": TOKEN}), clock=clock)
        with pytest.raises(RuntimeError, match="could not serve"):
            second.start()
        second.stop(timeout=20)
        code, out = ctl("--url", f"unix:{sock}", "--json", "risk")
        assert code == 0, out
    sock.write_text("not a socket")
    node = Node(parse_config(config_file.read_text(), environ={"T_TOKEN": TOKEN}), clock=clock)
    with pytest.raises(RuntimeError, match="could not serve"):
        node.start()
    node.stop(timeout=20)
    assert sock.read_text() == "not a socket"


# -- TLS ---------------------------------------------------------------------------------------


def _self_signed(where: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, signed by its own key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tradenode test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = where / "cert.pem", where / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    os.chmod(key_file, 0o600)
    return cert_file, key_file


def test_tls_with_a_self_signed_certificate_verified_as_its_own_ca(
    tmp_path: Path, clock: ManualClock
) -> None:
    cert, key = _self_signed(tmp_path)
    config_file = tmp_path / "node.yaml"
    config_file.write_text(
        BASE.format(journal=tmp_path / "journal")
        + f"  tls_certfile: {cert}\n  tls_keyfile: {key}\n"
    )
    with running(config_file, clock) as node:
        url = node.control_url
        assert url is not None and url.startswith("https://127.0.0.1:")
        code, out = ctl("--config", str(config_file), "--cacert", str(cert), "--json", "status")
        assert code == 0, out
        assert json.loads(out)["node"] == "tnode"
        code, out = ctl("--url", url, "--cacert", str(cert), "halt")
        assert code == 0, out
        assert node.risk.ask(GetRiskStatus(), 10)["state"] == "HALTED"
        # Without the certificate as a CA, the client refuses the server (no silent trust).
        code, out = ctl("--url", url, "--json", "status")
        assert code != 0 and "cannot reach" in out
        verified = ssl.create_default_context(cafile=str(cert))
        assert httpx.get(url + "/v1/risk", verify=verified).json()["state"] == "HALTED"
        with pytest.raises(httpx.HTTPError):  # plain HTTP to the TLS port gets no answer
            httpx.get(url.replace("https://", "http://") + "/v1/risk", timeout=10)


def test_approvals_reach_a_tls_node_with_its_certificate_as_ca(
    tmp_path: Path, clock: ManualClock
) -> None:
    """``tradenode approvals`` takes ``--cacert`` as ``tradenode ctl`` does: a node serving
    HTTPS with its own certificate is reachable, and without the CA it is refused."""
    cert, key = _self_signed(tmp_path)
    config_file = tmp_path / "node.yaml"
    config_file.write_text(
        BASE.format(journal=tmp_path / "journal")
        + f"  tls_certfile: {cert}\n  tls_keyfile: {key}\n"
    )
    env = {"TRADENODE_TOKEN": TOKEN, "T_TOKEN": TOKEN}
    with running(config_file, clock) as node:
        url = node.control_url
        assert url is not None and url.startswith("https://")
        listed = CliRunner().invoke(
            main, ["approvals", "--url", url, "--cacert", str(cert), "list", "--json"], env=env
        )
        assert listed.exit_code == 0, listed.output
        assert json.loads(listed.output) == []
        refused = CliRunner().invoke(main, ["approvals", "--url", url, "list"], env=env)
        assert refused.exit_code != 0 and "cannot reach" in refused.output


# -- what the config allows ----------------------------------------------------------------------


def test_a_remote_bind_without_allow_remote_is_still_refused(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    tls = {"tls_certfile": str(cert), "tls_keyfile": str(key)}
    # TLS alone does not open a remote bind (pydantic reports the validator's ConfigError).
    with pytest.raises(ValueError, match="not a loopback address: set allow_remote"):
        ControlConfig(enabled=True, host="0.0.0.0", **tls)
    remote = ControlConfig(enabled=True, host="0.0.0.0", allow_remote=True, **tls)
    assert remote.tls and remote.reads_need_token
    text = BASE.format(journal=tmp_path / "journal") + "  host: 0.0.0.0\n"
    with pytest.raises(ConfigError, match="allow_remote"):
        parse_config(text, environ={"T_TOKEN": TOKEN})
    # TLS needs both files, and files that exist.
    with pytest.raises(ValueError, match="both tls_certfile and tls_keyfile"):
        ControlConfig(enabled=True, tls_certfile=str(cert))
    with pytest.raises(ValueError, match="no such file"):
        ControlConfig(enabled=True, tls_certfile=str(cert), tls_keyfile=str(tmp_path / "nope"))
    # A Unix socket is this user's: reads need no token there.
    assert not ControlConfig(enabled=True, unix_socket=str(tmp_path / "s")).reads_need_token

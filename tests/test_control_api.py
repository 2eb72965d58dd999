"""The control API through a running node: reads, every action, tokens, audit, bad input.

The node runs in this process with its control server on an ephemeral loopback
port; requests go over real HTTP (httpx). The journal is read back with the
journal reader to find the audit records.
"""

from __future__ import annotations

import json
import socket
import urllib.parse
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tradenode import Node, parse_config
from tradenode.actors import EntryKind, GetPositions, decode_entry
from tradenode.journal import Journal
from tradenode.messages import OrderFilled, OrderStatus, OrderType, Side, TwapParams
from tradenode.supervision import ManualClock
from tradenode.testing.venues import DEFAULT_API_KEY, DEFAULT_API_SECRET, BinanceVenue

from ._binance_helpers import market, venue_clock
from ._node_helpers import Harness

TOKEN = "tok-ops-0123456789abcdef"
OTHER = "tok-view-0123456789abcdef"

CONFIG = """
node: {{name: ctlnode, seed: 5, intensity: {{max_restarts: 20, within_seconds: 60}}}}
broker_backoff: {{min_seconds: 0.5, max_seconds: 4, random_factor: 0}}
venues:
  - {{name: paper, paper: {{tick_interval_ms: 1000}}}}
oms: {{ack_timeout: 30}}
journal: {{path: {journal}, fsync: none, snapshot_every: 100000}}
control:
  enabled: true
  port: 0
  tokens: {{ops: "${{CTL_TOKEN}}", viewer: {other}}}
  max_body_bytes: 4096
{extra}
"""


def _config(tmp_path: Path, extra: str = "") -> Any:
    text = CONFIG.format(journal=tmp_path / "journal", other=OTHER, extra=extra)
    return parse_config(text, environ={"CTL_TOKEN": TOKEN})


@pytest.fixture
def h(tmp_path: Path, clock: ManualClock) -> Iterator[Harness]:
    node = Node(_config(tmp_path), clock=clock)
    node.start()
    try:
        yield Harness(node, clock)
    finally:
        node.stop(timeout=20)


def client(h: Harness, token: str | None = TOKEN) -> httpx.Client:
    assert h.node.control_url is not None
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return httpx.Client(base_url=h.node.control_url, headers=headers, timeout=30)


def audits(path: Path) -> list[Any]:
    with Journal.open_read_only(path) as log:
        entries = [decode_entry(payload) for _, payload in log.replay(0)]
    return [e for e in entries if e.kind is EntryKind.AUDIT]


def _risk_state(h: Harness) -> str:
    with client(h, None) as c:
        return str(c.get("/v1/risk").json()["state"])


# -- reads ------------------------------------------------------------------------------


def test_every_read_answers_json_without_a_token_on_loopback(h: Harness) -> None:
    coid = h.do(lambda ctx: ctx.submit_order("BTCUSDT", Side.BUY, Decimal("0.1"), venue="paper"))
    h.wait_for(OrderFilled, coid)
    h.sync()
    with client(h, None) as c:
        status = c.get("/v1/status").json()
        assert status["node"] == "ctlnode"
        tree = c.get("/v1/tree").json()
        assert tree["name"] == "ctlnode" and "restarts" in tree
        orders = c.get("/v1/orders", params={"venue": "paper"}).json()
        assert [(o["client_order_id"], o["status"]) for o in orders] == [(coid, "FILLED")]
        assert c.get("/v1/orders", params={"state": "ACCEPTED"}).json() == []
        assert c.get("/v1/orders", params={"strategy": "nobody"}).json() == []
        fills = c.get("/v1/fills").json()
        assert [f["client_order_id"] for f in fills] == [coid]
        positions = c.get("/v1/positions").json()
        assert [(p["symbol"], p["quantity"]) for p in positions] == [("BTCUSDT", "0.1")]
        pnl = c.get("/v1/pnl").json()
        assert set(pnl) == {"realized", "unrealized", "total", "by_position"}
        breakers = c.get("/v1/breakers").json()
        assert breakers["paper"]["state"] == "closed" and breakers["paper"]["dlq"] == 0
        assert c.get("/v1/risk").json()["state"] == "ACTIVE"
        assert c.get("/v1/approvals").json() == []
        assert c.get("/v1/parents").json() == []
    # The URL is also where `tradenode ctl` looks for it: beside the journal.
    url_file = Path(str(h.node.config.journal.path) + ".control.json")  # type: ignore[union-attr]
    assert json.loads(url_file.read_text())["url"] == h.node.control_url


def test_orders_that_ended_without_a_fill_are_listed_too(h: Harness) -> None:
    """A cancelled resting order and a denied one have no fills: the operator's order
    list still shows them, filtered by state, newest first."""
    resting = h.do(
        lambda ctx: ctx.submit_order(
            "BTCUSDT",
            Side.BUY,
            Decimal("0.1"),
            order_type=OrderType.LIMIT,
            price=Decimal("1000"),
            venue="paper",
        )
    )
    h.wait_status(resting, OrderStatus.ACCEPTED)
    h.do(lambda ctx: ctx.cancel_order(resting))
    h.wait_status(resting, OrderStatus.CANCELED)
    with client(h) as c:
        assert c.post("/v1/trading-state", json={"state": "HALTED"}).status_code == 200
    denied = h.do(lambda ctx: ctx.submit_order("BTCUSDT", Side.BUY, Decimal("0.1"), venue="paper"))
    h.wait_status(denied, OrderStatus.DENIED)
    with client(h, None) as c:
        listed = [(o["client_order_id"], o["status"]) for o in c.get("/v1/orders").json()]
        assert listed == [(denied, "DENIED"), (resting, "CANCELED")]
        canceled = c.get("/v1/orders", params={"state": "canceled"}).json()
        assert [o["client_order_id"] for o in canceled] == [resting]
        bad = c.get("/v1/orders", params={"state": "SLEEPING"})
        assert bad.status_code == 400 and "SLEEPING" in bad.json()["message"]


# -- tokens -----------------------------------------------------------------------------


def test_a_missing_or_wrong_token_is_refused_and_changes_nothing(
    h: Harness, tmp_path: Path
) -> None:
    actions = [
        ("POST", "/v1/kill-switch", {"flatten": True}),
        ("POST", "/v1/trading-state", {"state": "HALTED"}),
        ("DELETE", "/v1/venues/paper", None),
        ("POST", "/v1/journal/snapshot", None),
    ]
    for token, status, code in ((None, 401, "unauthorized"), ("wrong-" + TOKEN, 403, "forbidden")):
        with client(h, token) as c:
            for method, path, body in actions:
                answer = c.request(method, path, json=body)
                assert answer.status_code == status, (method, path, answer.text)
                assert answer.json()["error"] == code
                assert TOKEN not in answer.text
    with client(h, None) as c:
        answer = c.post("/v1/kill-switch", headers={"Authorization": "Basic abc"})
        assert answer.status_code == 401
    assert _risk_state(h) == "ACTIVE"
    assert h.node.directory.venue("paper") is not None
    assert audits(tmp_path / "journal") == []
    assert h.node.control is not None
    assert h.node.control.app.refused == {"unauthorized": 5, "forbidden": 4}


def _raw_answer(sock: socket.socket) -> tuple[str, dict[str, str], bytes]:
    """One HTTP/1.1 answer read off ``sock``: status line, headers, body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"closed before an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(4096)
        assert chunk, "closed in the middle of an answer"
        body += chunk
    return status, headers, body


def _connect(h: Harness) -> socket.socket:
    assert h.node.control_url is not None
    url = urllib.parse.urlsplit(h.node.control_url)
    assert url.hostname is not None and url.port is not None
    return socket.create_connection((url.hostname, url.port), timeout=30)


def test_a_refusal_answered_before_its_request_body_arrived_says_connection_close(
    h: Harness,
) -> None:
    """The server cannot take another request on a connection whose last body it
    never read, and closes it: the refusal must say so, or a keep-alive client
    sends its next request into the closing socket ("Server disconnected
    without sending a response", which once failed the token test above)."""
    body = json.dumps({"flatten": True}).encode()
    with _connect(h) as sock:
        sock.sendall(
            b"POST /v1/kill-switch HTTP/1.1\r\nHost: control\r\n"
            b"Content-Type: application/json\r\n" + f"Content-Length: {len(body)}\r\n\r\n".encode()
        )  # the body is held back: the refusal (no token) does not wait for it
        status, headers, answer = _raw_answer(sock)
        assert status.startswith("HTTP/1.1 401"), status
        assert json.loads(answer)["error"] == "unauthorized"
        assert headers.get("connection") == "close", headers
        assert sock.recv(4096) == b""  # and the server closes it, as it said
    assert _risk_state(h) == "ACTIVE"


def test_an_answer_to_a_request_whose_body_was_read_keeps_the_connection(h: Harness) -> None:
    body = json.dumps({"state": "REDUCING"}).encode()
    request = (
        b"POST /v1/trading-state HTTP/1.1\r\nHost: control\r\n"
        + f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n".encode()
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    with _connect(h) as sock:
        sock.sendall(request)
        status, headers, _ = _raw_answer(sock)
        assert status.startswith("HTTP/1.1 200"), status
        assert "connection" not in headers, headers
        sock.sendall(b"GET /v1/risk HTTP/1.1\r\nHost: control\r\n\r\n")  # same connection
        status, _, answer = _raw_answer(sock)
        assert status.startswith("HTTP/1.1 200"), status
        assert json.loads(answer)["state"] == "REDUCING"


# -- actions ----------------------------------------------------------------------------


def test_trading_state_kill_switch_and_snapshot_are_journaled_as_audit_records(
    h: Harness, tmp_path: Path
) -> None:
    resting = h.do(
        lambda ctx: ctx.submit_order(
            "BTCUSDT",
            Side.BUY,
            Decimal("0.1"),
            order_type=OrderType.LIMIT,
            price=Decimal("1000"),
            venue="paper",
        )
    )
    h.wait_status(resting, OrderStatus.ACCEPTED)
    with client(h) as c:
        assert c.post("/v1/trading-state", json={"state": "REDUCING"}).json() == {
            "state": "REDUCING"
        }
        assert _risk_state(h) == "REDUCING"
        answer = c.post("/v1/trading-state", json={"state": "SIDEWAYS"})
        assert answer.status_code == 422 and answer.json()["error"] == "invalid_state"
        assert _risk_state(h) == "REDUCING"
        assert c.post("/v1/trading-state", json={"state": "ACTIVE"}).json()["state"] == "ACTIVE"
        report = c.post("/v1/kill-switch", json={"flatten": False}).json()
        assert report["open_orders_found"] == 1 and report["cancels_confirmed"] == 1
        assert _risk_state(h) == "HALTED"
        assert h.order(resting).status is OrderStatus.CANCELED
    with client(h, OTHER) as c:
        assert c.post("/v1/trading-state", json={"state": "ACTIVE"}).status_code == 200
    records = audits(tmp_path / "journal")
    assert [(r.who, r.action, r.result.split(":")[0]) for r in records] == [
        ("ops", "trading-state", "ok"),
        ("ops", "trading-state", "refused 422 invalid_state"),
        ("ops", "trading-state", "ok"),
        ("ops", "kill-switch", "ok"),
        ("viewer", "trading-state", "ok"),
    ]
    assert json.loads(records[0].detail) == {"state": "REDUCING"}
    assert all(r.ts_ns == h.clock.time_ns() for r in records)  # the node's own clock
    with client(h) as c:
        listed = c.get("/v1/audit").json()
        assert [a["action"] for a in listed] == [r.action for r in records]
        snapshot = c.post("/v1/journal/snapshot").json()
        assert snapshot["snapshot_seq"] > 0
    with Journal.open_read_only(tmp_path / "journal") as log:
        latest = log.latest_snapshot()
        assert latest is not None and latest[0] == snapshot["snapshot_seq"]
    for record in records:
        assert TOKEN not in repr(record) and OTHER not in repr(record)


def test_strategies_are_added_and_removed(h: Harness) -> None:
    with client(h) as c:
        added = c.post(
            "/v1/strategies",
            json={"yaml": "{id: ex1, kind: example, venue: paper, symbols: [BTCUSDT]}"},
        )
        assert added.status_code == 201, added.text
        assert h.node.system.lookup(h.node.directory.path("core", "strategies", "ex1"))
        again = c.post("/v1/strategies", json={"id": "ex1", "venue": "paper"})
        assert again.status_code == 409
        bad = c.post("/v1/strategies", json={"id": "ex2", "venue": "nowhere"})
        assert bad.status_code == 422 and "nowhere" in bad.json()["message"]
        bad = c.post("/v1/strategies", json={"id": "has space"})
        assert bad.status_code == 422 and bad.json()["error"] == "invalid_strategy"
        assert c.delete("/v1/strategies/ex1").json() == {"strategy": "ex1", "removed": True}
        assert c.delete("/v1/strategies/ex1").status_code == 404
    assert h.node.system.lookup(h.node.directory.path("core", "strategies", "ex1")) is None


def test_the_dlq_is_reprocessed_per_venue(h: Harness) -> None:
    with client(h) as c:
        answer = c.post("/v1/dlq/reprocess", json={"venue": "paper"})
        assert answer.json() == {"venue": "paper", "reprocessed": 0, "dlq_after": 0}
        assert c.post("/v1/dlq/reprocess", json={"venue": "nope"}).status_code == 404


def test_pending_orders_are_approved_and_rejected(tmp_path: Path, clock: ManualClock) -> None:
    node = Node(_config(tmp_path, "execution_mode: MANUAL\n"), clock=clock)
    node.start()
    h = Harness(node, clock)
    try:
        first = h.do(
            lambda ctx: ctx.submit_order("BTCUSDT", Side.BUY, Decimal("0.1"), venue="paper")
        )
        second = h.do(
            lambda ctx: ctx.submit_order("BTCUSDT", Side.BUY, Decimal("0.2"), venue="paper")
        )
        h.sync()
        with client(h) as c:
            pending = c.get("/v1/approvals").json()
            assert [p["id"] for p in pending] == [first, second]
            assert c.post(f"/v1/approvals/{first}/approve").json()["approved"] is True
            h.wait_status(first, OrderStatus.FILLED)
            rejected = c.post(f"/v1/approvals/{second}/reject", json={"reason": "too big"})
            assert rejected.json()["rejected"] is True
            assert c.post(f"/v1/approvals/{second}/reject").status_code == 404
            assert c.get("/v1/approvals").json() == []
        h.sync()
        assert h.position("BTCUSDT") == Decimal("0.1")
    finally:
        node.stop(timeout=20)
    assert [(r.action, r.who) for r in audits(tmp_path / "journal")] == [
        ("approve", "ops"),
        ("reject", "ops"),
        ("reject", "ops"),
    ]


def test_a_local_binance_venue_is_added_from_yaml_traded_on_and_removed(
    h: Harness, clock: ManualClock, tmp_path: Path
) -> None:
    with BinanceVenue(seed=11, clock=venue_clock(clock)) as venue:
        snippet = f"""
name: binance
kind: binance
binance:
  environment: custom
  api_key: {DEFAULT_API_KEY}
  api_secret: {DEFAULT_API_SECRET}
  rest_url: {venue.rest_url}
  ws_api_url: {venue.ws_api_url}
  stream_url: {venue.stream_url}
  symbols: [BTCUSDT]
"""
        answers: list[str] = []
        with client(h) as c:
            added = c.post("/v1/venues", json={"yaml": snippet})
            answers.append(added.text)
            assert added.status_code == 201, added.text
            assert added.json() == {"venue": "binance", "kind": "binance"}
            again = c.post("/v1/venues", content=snippet, headers={"content-type": "text/yaml"})
            answers.append(again.text)
            assert again.status_code == 409
            coid = h.do(market(Side.BUY, "0.3"))
            h.wait_status(coid, OrderStatus.FILLED)
            h.sync()
            positions = {(p.venue, p.symbol): p.quantity for p in h.node.oms.ask(GetPositions())}
            assert positions[("binance", "BTCUSDT")] == Decimal("0.3")
            for path in ("/v1/status", "/v1/breakers", "/v1/orders", "/v1/fills", "/v1/audit"):
                read = c.get(path)
                assert read.status_code == 200
                answers.append(read.text)
            assert "binance" in c.get("/v1/breakers").json()
            removed = c.delete("/v1/venues/binance")
            answers.append(removed.text)
            assert removed.json() == {"venue": "binance", "removed": True}
            assert h.node.directory.venue("binance") is None
            gone = c.delete("/v1/venues/binance")
            assert gone.status_code == 404
            answers.append(c.get("/v1/status").text)
        for text in answers:
            assert DEFAULT_API_SECRET not in text and TOKEN not in text and OTHER not in text
    records = audits(tmp_path / "journal")
    assert [(r.action, r.result.split(":")[0]) for r in records] == [
        ("add-venue", "ok"),
        ("add-venue", "refused 409 venue_exists"),
        ("remove-venue", "ok"),
        ("remove-venue", "refused 404 unknown_venue"),
    ]
    for record in records:
        assert DEFAULT_API_SECRET not in record.detail + record.result


# -- bad input --------------------------------------------------------------------------


def test_bad_input_gets_a_4xx_with_a_message_and_changes_nothing(
    h: Harness, tmp_path: Path
) -> None:
    venues_before = [e.name for e in h.node.directory.venues()]
    with client(h) as c:
        cases = [
            (
                c.post(
                    "/v1/trading-state",
                    content=b"{not json",
                    headers={"content-type": "application/json"},
                ),
                400,
                "malformed_json",
            ),
            (c.post("/v1/trading-state", json=["HALTED"]), 400, "malformed_json"),
            (c.post("/v1/no-such-action", json={}), 404, "not_found"),
            (c.get("/v1/no-such-read"), 404, "not_found"),
            (c.get("/v1/kill-switch"), 405, "method_not_allowed"),
            (
                c.post(
                    "/v1/trading-state",
                    content=b"{" + b" " * 5000 + b"}",
                    headers={"content-type": "application/json"},
                ),
                413,
                "body_too_large",
            ),
            (c.post("/v1/venues", json={"yaml": "name: [unclosed"}), 422, "invalid_venue"),
            (c.post("/v1/venues", json={"yaml": "- a list"}), 422, "invalid_venue"),
            (c.post("/v1/venues", json={"yaml": "{name: BAD NAME}"}), 422, "invalid_venue"),
            (
                c.post(
                    "/v1/venues",
                    json={
                        "yaml": "{name: b2, kind: binance, binance: {api_key: k, api_secret: s3cr3t-value-xyz, rest_url: 5}}"
                    },
                ),
                422,
                "invalid_venue",
            ),
            (
                c.post("/v1/venues", json={"yaml": "{name: b3, kind: nosuchkind}"}),
                422,
                "invalid_venue",
            ),
            (c.post("/v1/venues", json={}), 422, "invalid_venue"),
            (c.post("/v1/kill-switch", json={"flatten": "yes"}), 422, "invalid_argument"),
        ]
        for answer, status, code in cases:
            assert answer.status_code == status, answer.text
            body = answer.json()
            assert body["error"] == code and body["message"], body
            assert "s3cr3t-value-xyz" not in answer.text and TOKEN not in answer.text
        invalid = cases[9][0].json()["message"]
        assert "venues[0].binance" in invalid
    assert [e.name for e in h.node.directory.venues()] == venues_before
    assert _risk_state(h) == "ACTIVE"
    # Refused before reaching an action (parse, path, size) leaves no audit record;
    # an authorised action refused for its content is journaled as refused.
    assert {r.result.split(":")[0] for r in audits(tmp_path / "journal")} == {
        "refused 422 invalid_venue",
        "refused 422 invalid_argument",
    }


def test_a_remote_bind_needs_allow_remote_and_tokens_are_checked(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="allow_remote"):
        parse_config("control: {enabled: true, host: 0.0.0.0}")
    with pytest.raises(Exception, match="at least 16"):
        parse_config("control: {enabled: true, tokens: {ops: short}}")
    with pytest.raises(Exception) as raised:
        parse_config("control: {enabled: true, tokens: {ops: '${T}'}}", environ={"T": "x" * 8})
    assert "xxxxxxxx" not in str(raised.value)
    remote = parse_config(
        "control: {enabled: true, host: 0.0.0.0, allow_remote: true, tokens: {ops: '${T}'}}",
        environ={"T": TOKEN},
    ).control
    assert remote.reads_need_token and TOKEN not in repr(remote)
    assert not parse_config("control: {enabled: true}").control.reads_need_token


def test_without_tokens_every_action_is_refused(tmp_path: Path, clock: ManualClock) -> None:
    config = parse_config(
        f"journal: {{path: {tmp_path / 'j'}, fsync: none}}\ncontrol: {{enabled: true}}\n"
    )
    node = Node(config, clock=clock)
    node.start()
    try:
        h = Harness(node, clock)
        with client(h) as c:
            answer = c.post("/v1/trading-state", json={"state": "HALTED"})
            assert answer.status_code == 403 and answer.json()["error"] == "forbidden"
        assert _risk_state(h) == "ACTIVE"
    finally:
        node.stop(timeout=20)


def test_the_kill_switch_flattens_when_asked_and_parents_are_listed(h: Harness) -> None:
    coid = h.do(lambda ctx: ctx.submit_order("BTCUSDT", Side.BUY, Decimal("0.3"), venue="paper"))
    h.wait_status(coid, OrderStatus.FILLED)
    parent_id = h.node.submit_parent(
        "BTCUSDT", Side.BUY, Decimal("1"), TwapParams(duration=600.0, slices=10), venue="paper"
    )
    h.sync()
    with client(h) as c:
        parents = c.get("/v1/parents").json()
        assert [(p["parent_id"], p["algorithm"], p["quantity"]) for p in parents] == [
            (parent_id, "TwapParams", "1")
        ]
        assert c.get("/v1/parents", params={"working": "true"}).json()[0]["state"] == "WORKING"
        report = c.post("/v1/kill-switch", json={"flatten": True}).json()
        assert report["complete"] is True, report
        assert len(report["flatten_orders"]) == 1
    h.sync()
    assert h.position("BTCUSDT") == Decimal(0)
    with client(h, None) as c:
        assert c.get("/v1/parents", params={"working": "true"}).json() == []
        assert c.get("/v1/risk").json()["state"] == "HALTED"


def test_execution_modes_and_an_emergency_ended_by_resuming(h: Harness) -> None:
    with client(h) as c:
        assert c.post("/v1/execution-mode", json={"mode": "MANUAL"}).json() == {"mode": "MANUAL"}
        assert h.node.execution_mode().value == "MANUAL"
        answer = c.post("/v1/execution-mode", json={"mode": "FULL_AUTO", "strategy": "s1"})
        assert answer.json() == {"mode": "FULL_AUTO", "strategy": "s1"}
        bad = c.post("/v1/execution-mode", json={"mode": "YOLO"})
        assert bad.status_code == 422 and bad.json()["error"] == "invalid_mode"
        refused = c.post("/v1/execution-mode", json={"mode": "EMERGENCY", "strategy": "s1"})
        assert refused.status_code == 409 and "node-wide" in refused.json()["message"]
        emergency = c.post("/v1/execution-mode", json={"mode": "EMERGENCY"}).json()
        assert emergency["mode"] == "EMERGENCY" and emergency["kill_switch"]["complete"]
        assert _risk_state(h) == "HALTED"
        stuck = c.post("/v1/execution-mode", json={"mode": "FULL_AUTO"})
        assert stuck.status_code == 409 and "resume" in stuck.json()["message"]
        resumed = c.post("/v1/trading-state", json={"state": "ACTIVE"}).json()
        assert resumed == {"state": "ACTIVE", "execution_mode": "FULL_AUTO"}
    assert h.node.execution_mode().value == "FULL_AUTO"
    assert _risk_state(h) == "ACTIVE"

"""Issue #12's acceptance test: a venue defined outside ``src/``.

The ``toy`` adapter (``tests/toyvenue``: codec, trio session, broker actor on
``BrokerBase``, settings, capabilities, factory) lives only in this test
package. It is installed the way a third-party package would be, through a
``tradenode.venues`` entry point in a ``.dist-info`` on ``sys.path``;
configured from YAML (``kind: toy``); and run through the conformance suite
against a tiny fake (``tests/toyvenue/fake.py``, the matching simulator
behind the toy wire protocol on loopback). No core file names it.
"""

from __future__ import annotations

import importlib
import json
import socket
import sys
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tradenode import ConfigError, MalformedPayloadError, Node, parse_config

# The command line's entry point, run in-process so that the toy's entry points are seen.
from tradenode._cli import main
from tradenode.actors import GetFills
from tradenode.brokers import (
    ENTRY_POINT_GROUP,
    get_venue_kind,
    installed_venue_kinds,
    reload_venue_kinds,
    unregister_venue_kind,
)
from tradenode.messages import OrderStatus, OrderType, Side, SubmitOrder
from tradenode.supervision import (
    EventRecorder,
    ManualClock,
    SupervisionEvent,
    SupervisionEventKind,
)
from tradenode.testing.conformance import (
    ConformanceSuite,
    ConformanceVenue,
    Instrument,
    NotSupported,
    VenueFill,
    VenueOrder,
)

from ._node_helpers import Harness
from .toyvenue.fake import DEFAULT_API_KEY, ToyVenue

REPO = Path(__file__).resolve().parents[1]
TOY_PACKAGE = Path(__file__).resolve().parent / "toyvenue"
ENTRY_POINT = "tests.toyvenue:VENUE_KIND"
COMMAND_ENTRY_POINT = "tests.toyvenue.fake:command"
#: Where ``tradenode venue`` finds its commands (docs/architecture.md, "How to add a venue").
VENUE_COMMANDS_GROUP = "tradenode.venue_commands"


# ------------------------------------------------------------- the installation


@pytest.fixture(scope="module")
def toy_installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``toy`` installed as a third-party distribution would be: a ``.dist-info``
    with the entry point, on ``sys.path``; the registry then reloads its entry
    points. Afterwards the distribution is gone and the registry as it was."""
    assert "toy" not in installed_venue_kinds(), "toy must not be known before it is installed"
    site = tmp_path_factory.mktemp("site")
    dist = site / "toyvenue-0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toyvenue\nVersion: 0\n")
    (dist / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\ntoy = {ENTRY_POINT}\n\n"
        f"[{VENUE_COMMANDS_GROUP}]\ntoy = {COMMAND_ENTRY_POINT}\n"
    )
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    reload_venue_kinds()
    try:
        yield site
    finally:
        sys.path.remove(str(site))
        importlib.invalidate_caches()
        unregister_venue_kind("toy")
        reload_venue_kinds()
        assert "toy" not in installed_venue_kinds()


def test_the_kind_loads_through_its_entry_point(toy_installed: Path) -> None:
    declared = {e.name: e for e in entry_points(group=ENTRY_POINT_GROUP)}
    assert declared["toy"].value == ENTRY_POINT
    assert Path(declared["toy"].dist._path) == toy_installed / "toyvenue-0.dist-info"  # type: ignore[union-attr]
    kind = get_venue_kind("toy")
    # The very object the entry point names: nothing called register_venue_kind.
    assert kind is declared["toy"].load()
    from tests.toyvenue import VENUE_KIND, ToySettings

    assert kind is VENUE_KIND and kind.settings is ToySettings


def test_tradenode_venue_runs_the_toys_fake_through_its_entry_point(toy_installed: Path) -> None:
    """``tradenode venue toy``: the command comes from the distribution, as the kind does."""
    runner = CliRunner()
    listed = runner.invoke(main, ["venue", "--help"])
    assert listed.exit_code == 0, listed.output
    assert "toy" in listed.output and "binance" in listed.output
    served = runner.invoke(main, ["venue", "toy", "--seed", "3"], input="")
    assert served.exit_code == 0, served.output
    where = json.loads(served.output.splitlines()[0])
    assert where["host"] == "127.0.0.1" and where["port"] > 0
    unknown = runner.invoke(main, ["venue", "nosuchvenue"])
    assert unknown.exit_code == 2 and "No such command 'nosuchvenue'" in unknown.output


def test_the_adapter_lives_outside_src_and_no_core_file_knows_it() -> None:
    """Cheaper than a diff: the package is under tests/, and nothing under
    src/tradenode names the kind, the package or its classes."""
    import tests.toyvenue

    package = Path(tests.toyvenue.__file__).resolve().parent
    assert package == TOY_PACKAGE
    assert (REPO / "src") not in package.parents
    names = ("toyvenue", "ToySettings", "ToyBroker", "kind: toy", '"toy"', "'toy'")
    mentions = [
        f"{path.relative_to(REPO)}: {name}"
        for path in sorted((REPO / "src" / "tradenode").rglob("*"))
        if path.is_file() and path.suffix in {".py", ".yaml", ".toml", ".txt", ".md"}
        for name in names
        if name in path.read_text(encoding="utf-8")
    ]
    assert mentions == []
    assert "toy" not in (REPO / "pyproject.toml").read_text(encoding="utf-8")


# ---------------------------------------------------------------- from YAML


def _yaml(venue: ToyVenue, *, api_key: str = DEFAULT_API_KEY) -> str:
    return f"""
node: {{name: toynode, seed: 5, intensity: {{max_restarts: 20, within_seconds: 60}}}}
broker_backoff: {{min_seconds: 0.5, max_seconds: 2, random_factor: 0}}
venues:
  - name: toy
    kind: toy
    toy:
      host: 127.0.0.1
      port: {venue.port}
      api_key: {api_key}
      recv_window_ms: 3000
      request_timeout: 2
    breaker: {{failure_threshold: 3, open_timeout: 10, request_timeout: 5, max_retries: 2}}
oms: {{ack_timeout: 30}}
"""


def test_a_node_configured_from_yaml_trades_on_the_toy_venue(toy_installed: Path) -> None:
    from tests.toyvenue import ToySettings

    clock = ManualClock()
    with ToyVenue(clock=clock.time_ns) as venue:
        config = parse_config(_yaml(venue))
        settings = config.venues[0].settings
        assert isinstance(settings, ToySettings) and settings.port == venue.port
        assert DEFAULT_API_KEY not in repr(config)
        node = Node(config, clock=clock)
        node.start()
        try:
            harness = Harness(node, clock)
            coid = harness.do(
                lambda ctx: ctx.submit_order("BTCUSDT", Side.BUY, Decimal("0.8"), venue="toy")
            )
            view = harness.wait_status(coid, OrderStatus.FILLED)
            assert view.fill_count == 2  # through two levels of the book
            assert harness.position("BTCUSDT", venue="toy") == Decimal("0.8")
            status = node.status()["connections"]["toy"]
            assert status["connections"] == 1 and status["reconciliations"] == 1
        finally:
            node.stop(timeout=10)


@pytest.mark.parametrize(
    ("section", "key", "words"),
    [
        ("{port: 1}", "venues[0].toy.api_key", "Field required"),
        ("{port: 0, api_key: k}", "venues[0].toy.port", "greater than"),
        ("{port: 1, api_key: k, colour: red}", "venues[0].toy.colour", "Extra inputs"),
        ("{port: 1, api_key: k, recv_window_ms: 9000}", "venues[0].breaker.request_timeout", ""),
    ],
)
def test_toy_settings_errors_name_the_key(
    toy_installed: Path, section: str, key: str, words: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(f"venues:\n  - {{name: t, kind: toy, toy: {section}}}\n")
    assert caught.value.key == key
    assert words in str(caught.value)


def test_a_wrong_api_key_is_refused_and_the_venue_never_connects(toy_installed: Path) -> None:
    clock = ManualClock()
    with ToyVenue(clock=clock.time_ns) as venue:
        node = Node(parse_config(_yaml(venue, api_key="wrong-key-000")), clock=clock)
        node.start()
        try:
            never = node.never_connected()
            assert "toy" in never and "AUTH" in never["toy"], never
            assert "wrong-key-000" not in str(never)
        finally:
            node.stop(timeout=10)
    assert venue.calls and set(venue.calls) == {"login"}


def test_a_stream_cut_mid_fill_loses_no_fill_and_sends_nothing_twice(toy_installed: Path) -> None:
    """The venue drops the connection after the first of an order's two fills (its
    answer lost with it): the broker fails, restarts, sweeps from its cursor."""
    clock = ManualClock()
    with ToyVenue(clock=clock.time_ns) as venue:
        node = Node(parse_config(_yaml(venue)), clock=clock)
        node.start()
        try:
            events = EventRecorder()
            node.system.events.subscribe(events)
            harness = Harness(node, clock)
            venue.drop_stream_mid_fill()
            coid = harness.do(
                lambda ctx: ctx.submit_order("BTCUSDT", Side.BUY, Decimal("0.8"), venue="toy")
            )
            scheduled = events.wait_for(
                lambda e: (
                    isinstance(e, SupervisionEvent)
                    and e.kind is SupervisionEventKind.RESTART_SCHEDULED
                    and e.path.endswith("/toy/broker")
                )
            )[0]
            clock.advance(scheduled.delay or 0.0)
            view = harness.wait_status(coid, OrderStatus.FILLED)
            assert (view.filled_quantity, view.fill_count) == (Decimal("0.8"), 2)
            applied = [f.execution_id for f in node.oms.ask(GetFills()) if f.venue == "toy"]
            assert sorted(applied) == sorted(f"toy-{f.trade_id}" for f in venue.fills())
            assert venue.submissions == {coid: 1}
            assert node.status()["connections"]["toy"]["connections"] == 2
        finally:
            node.stop(timeout=10)


def _raw(venue: ToyVenue, *frames: dict[str, Any]) -> list[dict[str, Any]]:
    """Speak the wire protocol without the adapter: one answer per frame."""
    with socket.create_connection((venue.host, venue.port), timeout=5) as sock:
        reader = sock.makefile("rb")
        answers = []
        for frame in frames:
            sock.sendall(json.dumps(frame).encode() + b"\n")
            while True:
                answer = json.loads(reader.readline())
                if "id" in answer:  # skip pushed events
                    answers.append(answer)
                    break
        return answers


def test_the_fake_speaks_the_protocol_on_its_own() -> None:
    """The fake as a third party sees it: duplicate client ids, stale requests, the
    busy answer and a wrong key are refused in the protocol's own words."""
    clock = ManualClock()
    now_ms = clock.time_ns() // 1_000_000
    order = {"cid": "raw1", "symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "qty": "0.01"}
    submit = {"op": "submit", "ts": now_ms, "window": 1000, "order": order}
    with ToyVenue(clock=clock.time_ns) as venue:
        wrong = _raw(venue, {"id": 0, "op": "login", "key": "nope-nope"})
        assert wrong[0]["err"]["code"] == "AUTH"
        venue.busy_next(retry_after=3)
        login = {"id": 0, "op": "login", "key": DEFAULT_API_KEY}
        answers = _raw(
            venue,
            login,
            {"id": 1, **submit},
            {"id": 2, **submit},
            {"id": 3, **submit},
            {"id": 4, **submit, "ts": now_ms - 1001, "order": {**order, "cid": "raw2"}},
            {"id": 5, "op": "query", "cid": "raw1"},
        )
    assert answers[1]["err"] == {"code": "BUSY", "msg": "busy, retry after 3 s", "retry_after": 3}
    assert answers[2]["ok"]["order"]["status"] == "FILLED"
    assert answers[3]["err"]["code"] == "DUPLICATE_CLIENT_ORDER_ID"
    assert answers[4]["err"]["code"] == "STALE"
    assert [f["tid"] for f in answers[5]["ok"]["fills"]] == [1]
    assert venue.submissions == {"raw1": 2, "raw2": 1}


def test_the_codec_refuses_what_it_cannot_read_or_express() -> None:
    from tests.toyvenue._codec import UnsupportedOrderError, parse_event, parse_line, submit_params

    with pytest.raises(MalformedPayloadError):
        parse_line(b'{"ev": "fill", "fill": {"tid": "garbage"', broker="toy")
    with pytest.raises(MalformedPayloadError):
        parse_event("toy", {"ev": "fill", "fill": {"tid": "garbage"}})
    with pytest.raises(MalformedPayloadError):
        parse_event("toy", {"ev": "margin_call"})
    stop = SubmitOrder(
        client_order_id="c1",
        strategy_id="s1",
        venue="toy",
        symbol="BTCUSDT",
        side=Side.BUY,
        order_type=OrderType.STOP,
        quantity=Decimal("0.01"),
        stop_price=Decimal("51000"),
    )
    with pytest.raises(UnsupportedOrderError):
        submit_params(stop)


# -------------------------------------------------------- the conformance suite


class ToyConformanceVenue(ConformanceVenue):
    """The fake toy venue as the conformance suite drives it."""

    def __init__(self) -> None:
        self._venue: ToyVenue | None = None

    @property
    def name(self) -> str:
        return "toy"

    @property
    def venue(self) -> ToyVenue:
        assert self._venue is not None, "not started"
        return self._venue

    def start(self, clock: ManualClock) -> None:
        self._venue = ToyVenue(clock=clock.time_ns, seed=11).start()

    def stop(self) -> None:
        if self._venue is not None:
            self._venue.stop()

    def venue_config(self) -> Mapping[str, Any]:
        settings = {
            "port": self.venue.port,
            "api_key": DEFAULT_API_KEY,
            "recv_window_ms": 3000,
            # Real seconds: how long a lost answer takes to become a TIMEOUT.
            "request_timeout": 1.0,
        }
        return {"name": self.name, "kind": "toy", "toy": settings}

    def instrument(self) -> Instrument:
        return Instrument(
            symbol="BTCUSDT",
            base_asset="BTC",
            quote_asset="USDT",
            reference_price=Decimal("50000.00"),
            tick_size=Decimal("0.01"),
            lot_size=Decimal("0.0001"),
            quantity=Decimal("0.01"),
            # One price move fills a resting order by one level (0.5) at most.
            large_quantity=Decimal("0.8"),
        )

    def set_price(self, symbol: str, price: Decimal) -> None:
        self.venue.set_price(symbol, price)

    def orders(self) -> Sequence[VenueOrder]:
        return [
            VenueOrder(
                client_order_id=o.client_order_id,
                order_id=str(o.venue_order_id),
                symbol=o.symbol,
                side=o.side.value,
                status=o.status.value,
                is_open=o.is_open,
                quantity=o.quantity,
                filled_quantity=o.filled_quantity,
            )
            for o in self.venue.orders()
        ]

    def fills(self) -> Sequence[VenueFill]:
        return [
            VenueFill(
                execution_id=f"{self.name}-{f.trade_id}",
                client_order_id=f.client_order_id,
                order_id=str(f.venue_order_id),
                symbol=f.symbol,
                side=f.side.value,
                quantity=f.quantity,
                price=f.price,
            )
            for f in self.venue.fills()
        ]

    def position(self, symbol: str) -> Decimal:
        base = next(i.base_asset for i in self.venue.instruments() if i.symbol == symbol)
        free, locked = self.venue.balances()[base]
        return free + locked - self.venue.initial_balances[base]

    def submissions(self) -> Mapping[str, int]:
        return dict(self.venue.submissions)

    def drop_stream(self) -> None:
        self.venue.drop_connections()

    def lose_next_submit_response(self) -> None:
        self.venue.lose_next_submit_response()

    def rate_limit_next_request(self, retry_after: int) -> None:
        self.venue.busy_next(1, retry_after=retry_after)

    def corrupt_next_event(self) -> None:
        self.venue.corrupt_next_event()

    def place_directly(self, order: SubmitOrder) -> None:
        if order.order_type not in (OrderType.MARKET, OrderType.LIMIT):
            raise NotSupported(f"another client's {order.order_type.value} order")
        self.venue.place_order(
            order.client_order_id, order.symbol, order.side, order.quantity, price=order.price
        )

    def secrets(self) -> tuple[str, ...]:
        return (DEFAULT_API_KEY,)


class TestToyConformance(ConformanceSuite):
    @pytest.fixture
    def conformance_venue(self, toy_installed: Path) -> ConformanceVenue:
        return ToyConformanceVenue()

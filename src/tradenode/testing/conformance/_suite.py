"""The conformance suite: one pytest class an adapter's test module subclasses.

The subclass provides a ``conformance_venue`` fixture returning a fresh,
not yet started :class:`ConformanceVenue`; every test method then runs
against it, each with a fresh fake venue, a node whose journal is in
``tmp_path`` and one :class:`~tradenode.supervision.ManualClock` for both.
The checks read the venue's own books (``ConformanceVenue.orders``,
``fills``, ``position``), never only the node's.

Conventions an adapter must follow, besides the broker contract
(``docs/architecture.md``): its section of ``Node.status()["connections"]``
counts ``malformed_payloads``; a malformed payload is logged by a
``tradenode`` logger at WARNING or above with "malformed" in the message.

``campaign_seeds`` / ``campaign_incarnations`` bound the out-of-process
randomized campaign, ``incarnation_seeds`` / ``incarnations`` the in-process
one: CI runs the bounded sets.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import random
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import ClassVar, TypeVar

import pytest

from ...actors import Outcome
from ...messages import OrderFilled, OrderRejected, OrderStatus, OrderType, Side, SubmitOrder
from ...supervision import ManualClock, SupervisionEventKind
from ..campaign import run_campaign
from ._driver import Driver, Rig
from ._venue import ConformanceVenue, NotSupported

__all__ = ["ConformanceSuite", "assert_books_agree"]

K = SupervisionEventKind
T = TypeVar("T")

_OPEN = (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)

#: The local fake venues log as tradenode.testing.*: they are the venue, not the node.
_FAKE_LOGGERS = ("tradenode.testing", "hypercorn")


def needs(venue: ConformanceVenue, hook: str, call: Callable[[], T]) -> T:
    """``call()``, or skip the check when the venue cannot offer ``hook``."""
    try:
        return call()
    except NotSupported as exc:
        pytest.skip(f"{venue.name}: {hook} not supported: {exc.reason}")


def await_venue_fills(driver: Driver, timeout: float = 10.0) -> None:
    """Wait until the node has every execution the venue's books hold, or ``timeout``.

    ``Driver.sync`` waits for the node's actors and the requests on the wire,
    not for what the venue pushes on its own: a market order's fills may still
    be on the user stream after its placement was answered. The OMS tells the
    suite's strategy each fill of its orders once it has applied it, so the
    wait is for the strategy to have been told the missing ones (a fill of an
    order the node adopted is told to nobody here: it is found by the first
    look, or the wait runs out). A fill that never comes is then the
    assertion's to report, not this wait's."""
    wanted = {fill.execution_id for fill in driver.venue.fills()}
    driver.sync()
    missing = wanted - {fill.execution_id for fill in driver.fills()}
    if not missing:
        return

    def told(item: object) -> bool:
        return isinstance(item, OrderFilled) and item.execution_id in missing

    with contextlib.suppress(TimeoutError):
        driver.seen.wait_for(told, count=len(missing), timeout=timeout)
    driver.sync()


def assert_books_agree(driver: Driver) -> None:
    """The node and the venue's own books agree: every venue fill applied exactly
    once, one venue order per client id, each order's filled quantity, the open
    orders both ways, and the position as the venue's account shows it."""
    await_venue_fills(driver)
    venue = driver.venue
    executions = [fill.execution_id for fill in driver.fills()]
    assert len(executions) == len(set(executions)), f"a fill was applied twice: {executions}"
    at_venue = {fill.execution_id for fill in venue.fills()}
    assert set(executions) == at_venue, (
        f"missing {sorted(at_venue - set(executions))}, extra {sorted(set(executions) - at_venue)}"
    )
    ids = [order.client_order_id for order in venue.orders()]
    assert len(ids) == len(set(ids)), f"an order was placed twice: {ids}"
    try:
        submissions = venue.submissions()
    except NotSupported:
        submissions = {}
    assert all(count == 1 for count in submissions.values()), submissions
    for order in venue.orders():
        view = driver.order(order.client_order_id)
        assert view is not None, f"{order.client_order_id}: at the venue, unknown to the node"
        assert view.filled_quantity == order.filled_quantity, (order, view)
    assert driver.open_order_ids() == {o.client_order_id for o in venue.open_orders()}
    symbol = venue.instrument().symbol
    assert driver.position(symbol) == venue.position(symbol)


def walk(venue: ConformanceVenue, prices: tuple[Decimal, ...]) -> None:
    symbol = venue.instrument().symbol
    for price in prices:
        venue.set_price(symbol, price)


def fill_at_venue(venue: ConformanceVenue, client_order_id: str, below: Decimal) -> None:
    """Move the price down from ``below``, 2 bps at a time, until the venue has
    filled the resting BUY ``client_order_id`` completely (bounded)."""
    instrument = venue.instrument()
    step = max(instrument.tick_size, instrument.price("0.0002"))
    for moves in range(40):
        order = venue.order(client_order_id)
        assert order is not None
        if order.filled_quantity == order.quantity:
            return
        venue.set_price(instrument.symbol, below - moves * step)
    raise AssertionError(
        f"{client_order_id} never filled at the venue: {venue.order(client_order_id)}"
    )


class ConformanceSuite:
    """Subclass as ``Test<Venue>Conformance`` and provide the ``conformance_venue`` fixture."""

    campaign_seeds: ClassVar[tuple[int, ...]] = (7,)
    """Seeds of the out-of-process randomized exactly-once campaign (a bounded set)."""
    campaign_incarnations: ClassVar[int] = 3
    """Node incarnations per out-of-process campaign seed."""
    incarnation_seeds: ClassVar[tuple[int, ...]] = (1, 2)
    """Seeds of the in-process randomized campaign (node incarnations abandoned mid-flight)."""
    incarnations: ClassVar[int] = 4
    """Node incarnations per in-process seed."""

    # -------------------------------------------------------------- fixtures

    @pytest.fixture
    def rig(
        self,
        conformance_venue: ConformanceVenue,
        tmp_path: Path,
        caplog: pytest.LogCaptureFixture,
    ) -> Iterator[Rig]:
        caplog.set_level(logging.INFO, logger="tradenode")
        clock = ManualClock()
        conformance_venue.start(clock)
        rig = Rig(conformance_venue, clock, tmp_path)
        try:
            yield rig
        finally:
            try:
                rig.close()
            finally:
                conformance_venue.stop()

    @pytest.fixture
    def node(self, rig: Rig) -> Driver:
        return rig.start_node()

    # ------------------------------------------------ orders, fills, cancels

    @pytest.mark.parametrize("order_type", list(OrderType), ids=[t.value for t in OrderType])
    def test_order_type_lifecycle(self, node: Driver, order_type: OrderType) -> None:
        """Every order type the venue declares rests (unless it executes at once),
        cancels, and fills, as the venue's own books show."""
        entry = node.node.directory.venue(node.name)
        assert entry is not None
        if order_type not in entry.capabilities.order_types:
            pytest.skip(f"{node.name} does not declare {order_type.value}")
        venue, instrument = node.venue, node.venue.instrument()
        recipe = needs(
            venue, f"order_recipe({order_type.value})", lambda: venue.order_recipe(order_type)
        )
        quantity = instrument.quantity
        if recipe.rests:
            canceled = node.submit(Side.BUY, quantity, order_type, **recipe.fields)
            node.wait_status(canceled, *_OPEN)
            at_venue = venue.order(canceled)
            assert at_venue is not None and at_venue.is_open, at_venue
            node.cancel(canceled)
            node.wait_status(canceled, OrderStatus.CANCELED)
            at_venue = venue.order(canceled)
            assert at_venue is not None and not at_venue.is_open, at_venue
            assert at_venue.filled_quantity == 0
        coid = node.submit(Side.BUY, quantity, order_type, **recipe.fields)
        if recipe.rests:
            node.wait_status(coid, *_OPEN)
            at_venue = venue.order(coid)
            assert at_venue is not None and at_venue.is_open, at_venue
            walk(venue, recipe.fill_path)
        view = node.wait_status(coid, OrderStatus.FILLED)
        assert view.filled_quantity == quantity
        at_venue = venue.order(coid)
        assert at_venue is not None and not at_venue.is_open
        assert at_venue.filled_quantity == quantity
        assert node.position(instrument.symbol) == venue.position(instrument.symbol) == quantity
        assert_books_agree(node)

    def test_partial_fills(self, node: Driver) -> None:
        """A resting order fills in parts; each part reaches the node once."""
        venue, instrument = node.venue, node.venue.instrument()
        needs(venue, "fills_resting_orders_in_parts", venue.fills_resting_orders_in_parts)
        price = instrument.price("0.99")
        coid = node.limit(Side.BUY, price, instrument.large_quantity)
        node.wait_status(coid, OrderStatus.ACCEPTED)
        venue.set_price(instrument.symbol, instrument.price("0.985"))
        partly = node.wait_status(coid, OrderStatus.PARTIALLY_FILLED)
        assert 0 < partly.filled_quantity < instrument.large_quantity
        fill_at_venue(venue, coid, instrument.price("0.984"))
        view = node.wait_status(coid, OrderStatus.FILLED)
        assert view.filled_quantity == instrument.large_quantity
        assert view.fill_count >= 2
        assert len([f for f in venue.fills() if f.client_order_id == coid]) == view.fill_count
        assert_books_agree(node)

    def test_cancel_of_a_partly_filled_order_keeps_its_fills(self, node: Driver) -> None:
        venue, instrument = node.venue, node.venue.instrument()
        needs(venue, "fills_resting_orders_in_parts", venue.fills_resting_orders_in_parts)
        price = instrument.price("0.99")
        coid = node.limit(Side.BUY, price, instrument.large_quantity)
        node.wait_status(coid, OrderStatus.ACCEPTED)
        venue.set_price(instrument.symbol, instrument.price("0.985"))
        partly = node.wait_status(coid, OrderStatus.PARTIALLY_FILLED)
        node.cancel(coid)
        view = node.wait_status(coid, OrderStatus.CANCELED)
        assert view.filled_quantity == partly.filled_quantity
        at_venue = venue.order(coid)
        assert at_venue is not None and not at_venue.is_open
        assert at_venue.filled_quantity == partly.filled_quantity
        # Prices moving through the old price fill nothing more.
        venue.set_price(instrument.symbol, instrument.price("0.97"))
        assert_books_agree(node)
        assert node.position() == partly.filled_quantity

    def test_modify(self, node: Driver) -> None:
        """A modify moves a resting order's price and size at the venue (natively or
        by cancel/replace, as the venue declares), and the new terms fill."""
        venue, instrument = node.venue, node.venue.instrument()
        coid = node.limit(Side.BUY, instrument.price("0.98"), instrument.large_quantity)
        node.wait_status(coid, OrderStatus.ACCEPTED)
        new_price, new_quantity = instrument.price("0.985"), instrument.quantity
        live = node.modify(coid, price=new_price, quantity=new_quantity)
        assert live is not None
        if live != coid:  # cancel/replace: the original closes, the replacement rests
            node.wait_status(coid, OrderStatus.CANCELED)
        view = node.wait_status(live, *_OPEN)
        node.sync()
        view = node.wait_status(live, *_OPEN)
        assert (view.order.price, view.order.quantity) == (new_price, new_quantity)
        at_venue = venue.order(live)
        assert at_venue is not None and at_venue.is_open
        assert at_venue.quantity == new_quantity, at_venue
        assert [o.client_order_id for o in venue.open_orders()] == [live]
        # The new price fills; the old one would not have.
        venue.set_price(instrument.symbol, instrument.price("0.984"))
        node.wait_status(live, OrderStatus.FILLED)
        assert_books_agree(node)
        assert node.position() == new_quantity

    def test_cancel_all(self, node: Driver) -> None:
        """Cancel-all (the kill switch without flatten) closes every open order at
        the venue, whatever cancel-all scope it declares."""
        venue, instrument = node.venue, node.venue.instrument()
        resting = [
            node.limit(Side.BUY, instrument.price(fraction), instrument.quantity)
            for fraction in ("0.97", "0.975", "0.98")
        ]
        for coid in resting:
            node.wait_status(coid, OrderStatus.ACCEPTED)
        report = node.node.kill_switch(flatten=False, timeout=30)
        assert report.complete, report.problems
        assert (report.open_orders_found, report.cancels_confirmed) == (3, 3)
        for coid in resting:
            assert node.status_of(coid) is OrderStatus.CANCELED
            at_venue = venue.order(coid)
            assert at_venue is not None and not at_venue.is_open, at_venue
        assert list(venue.open_orders()) == []
        assert_books_agree(node)

    def test_kill_switch_with_flatten_leaves_the_venues_account_flat(self, node: Driver) -> None:
        venue, instrument = node.venue, node.venue.instrument()
        bought = node.submit(Side.BUY, instrument.quantity * 2)
        node.wait_status(bought, OrderStatus.FILLED)
        resting = [
            node.limit(Side.BUY, instrument.price(fraction), instrument.quantity)
            for fraction in ("0.97", "0.98")
        ]
        for coid in resting:
            node.wait_status(coid, OrderStatus.ACCEPTED)
        assert venue.position(instrument.symbol) == instrument.quantity * 2
        report = node.node.kill_switch(flatten=True, timeout=30)
        assert report.complete, report.problems
        assert report.problems == ()
        assert (report.open_orders_found, report.cancels_confirmed) == (2, 2)
        assert report.flatten_orders
        for coid in report.flatten_orders:
            assert node.status_of(coid) is OrderStatus.FILLED
        # As the venue's own account shows it: nothing open, nothing held.
        assert list(venue.open_orders()) == []
        assert venue.position(instrument.symbol) == 0
        assert all(p.quantity == 0 for p in report.positions_after)
        assert_books_agree(node)

    # ------------------------------------------------------------------ faults

    def test_stream_dropped_mid_fill_then_the_broker_restarts_every_fill_once(
        self, node: Driver
    ) -> None:
        venue, instrument = node.venue, node.venue.instrument()
        needs(venue, "drop_stream", lambda: None)  # checked for real below
        price = instrument.price("0.99")
        coid = node.limit(Side.BUY, price, instrument.large_quantity)
        node.wait_status(coid, OrderStatus.ACCEPTED)
        try:
            venue.fills_resting_orders_in_parts()
        except NotSupported:  # a dealer fills whole: the stream drops while the order rests
            partly = Decimal(0)
        else:
            venue.set_price(instrument.symbol, instrument.price("0.985"))
            partly = node.wait_status(coid, OrderStatus.PARTIALLY_FILLED).filled_quantity

        needs(venue, "drop_stream", venue.drop_stream)
        node.wait_broker(K.RESTART_SCHEDULED, 2)
        # The rest fills while the node hears nothing.
        fill_at_venue(venue, coid, instrument.price("0.984"))
        node.sync(brokers=False)
        view = node.order(coid)
        assert view is not None and view.filled_quantity == partly, "applied while disconnected?"

        node.restart_broker(2)
        node.wait_status(coid, OrderStatus.FILLED)
        assert_books_agree(node)
        assert node.position() == instrument.large_quantity

    def test_a_submit_of_unknown_outcome_is_resolved_by_query_never_sent_twice(
        self, node: Driver
    ) -> None:
        venue, instrument = node.venue, node.venue.instrument()
        needs(venue, "lose_next_submit_response", venue.lose_next_submit_response)
        coid = node.submit(Side.BUY, instrument.quantity)
        node.replies.wait_for(lambda reply: not reply.outcome.venue_answered)
        node.sync()
        at_venue = venue.order(coid)
        assert at_venue is not None, "the venue should have processed the placement"
        node.clock.advance(0.5)  # the breaker's retry delay: it queries the venue
        node.wait_status(coid, OrderStatus.FILLED)
        node.replies.wait_for(
            lambda reply: reply.outcome is Outcome.OK and reply.report is not None
        )
        # Past every acceptance window: still nothing sent again.
        node.clock.advance(10)
        node.sync()
        assert [o.client_order_id for o in venue.orders()].count(coid) == 1
        with contextlib.suppress(NotSupported):
            assert venue.submissions()[coid] == 1
        assert not any(
            isinstance(m, OrderRejected) and m.client_order_id == coid for m in node.seen.items
        ), "sent twice: the venue refused the duplicate"
        assert_books_agree(node)
        assert node.position() == instrument.quantity

    def test_a_429_with_retry_after_is_honoured(self, node: Driver) -> None:
        venue, instrument = node.venue, node.venue.instrument()
        needs(venue, "rate_limit_next_request", lambda: venue.rate_limit_next_request(7))
        coid = node.submit(Side.BUY, instrument.quantity)
        limited = node.replies.wait_for(lambda reply: reply.outcome is Outcome.RATE_LIMITED)[0]
        assert limited.retry_after == 7, limited
        node.sync()
        node.clock.advance(6.9)
        node.sync()
        assert venue.order(coid) is None, "sent again before Retry-After"
        assert not node.replies_seen(lambda reply: reply.outcome is Outcome.BANNED)
        node.clock.advance(0.1)
        node.wait_status(coid, OrderStatus.FILLED)
        assert not node.replies_seen(lambda reply: reply.outcome is Outcome.BANNED)
        assert not node.node.failed
        assert_books_agree(node)

    def test_a_malformed_payload_is_logged_counted_and_never_fatal(
        self, node: Driver, caplog: pytest.LogCaptureFixture
    ) -> None:
        venue, instrument = node.venue, node.venue.instrument()
        needs(venue, "corrupt_next_event", venue.corrupt_next_event)
        coid = node.submit(Side.BUY, instrument.quantity)
        filled_or_restart = node.broker_event(K.RESTART_SCHEDULED, 2)
        node.seen.wait_for(
            lambda e: filled_or_restart(e) or node.status_of(coid) is OrderStatus.FILLED
        )
        if any(filled_or_restart(e) for e in node.seen.items):
            # The payload might have been a fill: the broker may fail so that
            # its next incarnation reconciles; it must come back.
            node.restart_broker(2)
        node.wait_status(coid, OrderStatus.FILLED)
        assert venue.malformed_payloads(node.connection_status()) == 1
        assert any(
            record.name.startswith("tradenode")
            and record.levelno >= logging.WARNING
            and "malformed" in record.getMessage().lower()
            for record in caplog.records
        ), "the malformed payload was not logged"
        later = node.submit(Side.BUY, instrument.quantity)
        node.wait_status(later, OrderStatus.FILLED)
        assert not node.node.failed
        assert_books_agree(node)

    # ----------------------------------------------------------------- restarts

    def test_restart_from_the_journal_reconciles_what_happened_while_down(self, rig: Rig) -> None:
        venue, instrument = rig.venue, rig.venue.instrument()
        first = rig.start_node()
        bought = first.submit(Side.BUY, instrument.quantity)
        first.wait_status(bought, OrderStatus.FILLED)
        price = instrument.price("0.98")
        filled_while_down = first.limit(Side.BUY, price, instrument.quantity)
        still_open = first.limit(Side.BUY, instrument.price("0.95"), instrument.quantity)
        canceled_while_down = first.limit(Side.BUY, instrument.price("0.96"), instrument.quantity)
        for coid in (filled_while_down, still_open, canceled_while_down):
            first.wait_status(coid, OrderStatus.ACCEPTED)
        rig.stop_node(first)

        venue.set_price(instrument.symbol, instrument.price("0.975"))
        at_venue = venue.order(filled_while_down)
        assert at_venue is not None and at_venue.filled_quantity == instrument.quantity
        rig.clock.advance(1.0)
        second = rig.start_node()
        assert second.order(bought) is not None, "the journal lost an order"
        second.wait_status(filled_while_down, OrderStatus.FILLED)
        assert second.status_of(still_open) is OrderStatus.ACCEPTED
        second.cancel(canceled_while_down)
        second.wait_status(canceled_while_down, OrderStatus.CANCELED)
        assert_books_agree(second)
        assert second.position() == 2 * instrument.quantity

    def test_restart_adopts_orders_and_fills_the_journal_lacks(self, rig: Rig) -> None:
        venue, instrument = rig.venue, rig.venue.instrument()
        first = rig.start_node()
        ours = first.submit(Side.BUY, instrument.quantity)
        first.wait_status(ours, OrderStatus.FILLED)
        rig.stop_node(first)

        # While no node runs, another client trades on the same account.
        symbol = instrument.symbol
        taken = SubmitOrder(
            client_order_id="confext1",
            strategy_id="other",
            venue=venue.name,
            symbol=symbol,
            side=Side.BUY,
            order_type=OrderType.MARKET,
            quantity=instrument.quantity,
        )
        resting = SubmitOrder(
            client_order_id="confext2",
            strategy_id="other",
            venue=venue.name,
            symbol=symbol,
            side=Side.BUY,
            order_type=OrderType.LIMIT,
            quantity=instrument.quantity,
            price=instrument.price("0.95"),
        )
        needs(venue, "place_directly", lambda: venue.place_directly(taken))
        venue.place_directly(resting)
        rig.clock.advance(1.0)

        second = rig.start_node()
        filled = second.order("confext1")
        assert filled is not None, "a fill the venue has and the journal lacks was not adopted"
        assert filled.strategy_id == "external"
        assert (filled.status, filled.filled_quantity) == (OrderStatus.FILLED, instrument.quantity)
        adopted = second.order("confext2")
        assert adopted is not None, "an order the venue has and the journal lacks was not adopted"
        assert adopted.strategy_id == "external" and adopted.status is OrderStatus.ACCEPTED
        assert_books_agree(second)
        assert second.position() == 2 * instrument.quantity

    # ------------------------------------------------------------------ secrets

    def test_secrets_never_in_logs_reprs_status_or_journal(self, rig: Rig) -> None:
        """Every log record of every logger but the fake venue's own, at every level,
        the node's status, the reprs of its config and the venue's runtime object,
        and every journal file: none holds a secret."""
        venue = rig.venue
        secrets = needs(venue, "secrets", venue.secrets)
        assert secrets and all(len(secret) >= 8 for secret in secrets), secrets
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setLevel(logging.DEBUG)
        handler.addFilter(lambda record: not record.name.startswith(_FAKE_LOGGERS))
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        root = logging.getLogger()
        previous = root.level
        root.addHandler(handler)
        root.setLevel(logging.DEBUG)
        try:
            texts = self._trade_and_collect(rig)
        finally:
            root.removeHandler(handler)
            root.setLevel(previous)
        texts["logs"] = stream.getvalue()
        for path in sorted(rig.journal.rglob("*")):
            if path.is_file():
                texts[f"journal {path.name}"] = path.read_bytes().decode("latin-1")
        for where, text in texts.items():
            for secret in secrets:
                assert secret not in text, f"a secret is in the {where}"
                if len(secret) >= 24:
                    assert secret[4:20] not in text, f"part of a secret is in the {where}"

    @staticmethod
    def _trade_and_collect(rig: Rig) -> dict[str, str]:
        venue, instrument = rig.venue, rig.venue.instrument()
        node = rig.start_node()
        with contextlib.suppress(NotSupported):
            venue.lose_next_submit_response()
        coid = node.submit(Side.BUY, instrument.quantity)
        node.clock.advance(0.5)
        node.wait_status(coid, OrderStatus.FILLED)
        refused = node.submit(Side.BUY, instrument.quantity * 10**9)
        node.wait_status(refused, OrderStatus.REJECTED, OrderStatus.DENIED)
        texts = {
            "status": json.dumps(node.node.status(), default=str),
            "repr(runtime)": repr(node.node.venues[venue.name]),
            "repr(config)": repr(node.node.config) + repr(node.node.directory.venue(venue.name)),
            "str(config)": str(node.node.config),
        }
        rig.stop_node(node)
        return texts

    # ------------------------------------------------------- randomized campaigns

    def test_randomized_campaign_out_of_process(
        self, conformance_venue: ConformanceVenue, tmp_path: Path
    ) -> None:
        """The exactly-once campaign (:mod:`tradenode.testing.campaign`): node
        processes SIGKILLed against the venue in another process, bounded seeds."""
        campaign_venue = needs(
            conformance_venue, "campaign_venue", conformance_venue.campaign_venue
        )
        failures = []
        for seed in self.campaign_seeds:
            summary = run_campaign(
                campaign_venue,
                seed=seed,
                workdir=tmp_path / f"seed{seed}",
                incarnations=self.campaign_incarnations,
                echo=logging.getLogger("tradenode.conformance").info,
            )
            failures += [
                f"seed {seed}: {result.line()}"
                for result in summary.invariants
                if not result.passed
            ]
        assert not failures, "\n".join(failures)

    def test_randomized_incarnations_in_process(self, rig: Rig) -> None:
        """Node incarnations in this process on one venue, each abandoned mid-flight
        (seeded orders, faults and in-flight requests left unresolved), then a
        settle run: every venue fill journaled once, one order per client id,
        positions as the venue's account shows them."""
        for seed in self.incarnation_seeds:
            _in_process_campaign(rig, seed, self.incarnations)


def _in_process_campaign(rig: Rig, seed: int, incarnations: int) -> None:
    """One seed: ``incarnations`` nodes on the same journal and venue, each trading
    at random, hit by the venue's faults, and stopped with requests in flight
    (an unknown outcome the next incarnation must resolve); then a settle node.

    An in-process incarnation is stopped, not SIGKILLed: its journal is closed
    cleanly. What it leaves behind is what matters here: orders whose outcome
    it never learned, fills it never heard of, and streams cut mid-flight.
    """
    rng = random.Random(seed)
    venue, instrument = rig.venue, rig.venue.instrument()
    log = logging.getLogger("tradenode.conformance")
    log.info("in-process campaign: seed %d, %d incarnations", seed, incarnations)
    for number in range(incarnations):
        node = rig.start_node()
        for _ in range(rng.randint(4, 8)):
            _random_step(node, rng)
        _settle_broker(node)
        # Abandoned mid-flight: a placement whose answer is lost, or one still
        # on its way, when the node goes.
        if rng.random() < 0.5:
            with contextlib.suppress(NotSupported):
                venue.lose_next_submit_response()
        node.submit(Side.BUY, instrument.quantity)
        log.info("in-process campaign: seed %d, incarnation %d abandoned", seed, number)
        rig.stop_node(node)
        rig.clock.advance(rng.choice((0.5, 1.0, 3.0)))
    settle = rig.start_node()
    for _ in range(12):  # past every acceptance window, every retry
        settle.clock.advance(1.0)
        _settle_broker(settle)
        settle.sync()
    unresolved = [
        coid
        for coid in settle.open_order_ids()
        if settle.status_of(coid) in (OrderStatus.INITIALIZED, OrderStatus.SUBMITTED)
    ]
    assert not unresolved, f"seed {seed}: outcomes never resolved: {unresolved}"
    assert venue.fills(), f"seed {seed}: nothing traded"
    try:
        assert_books_agree(settle)
    except AssertionError as exc:
        raise AssertionError(f"seed {seed}: {exc}") from exc
    rig.stop_node(settle)


def _random_step(node: Driver, rng: random.Random) -> None:
    venue, instrument = node.venue, node.venue.instrument()
    action = rng.choice(("market", "limit", "limit", "cancel", "modify", "price", "fault"))
    if action == "market":
        selling = node.position() >= instrument.quantity and rng.random() < 0.4
        node.submit(Side.SELL if selling else Side.BUY, instrument.quantity)
    elif action == "limit":
        price = instrument.price(rng.choice(("0.985", "0.99", "0.995")))
        node.limit(Side.BUY, price, instrument.quantity * rng.randint(1, 12))
    elif action in ("cancel", "modify"):
        open_orders = sorted(node.do(lambda ctx: list(ctx.open_orders())))
        if open_orders:
            coid = rng.choice(open_orders)
            if action == "cancel":
                node.cancel(coid)
            else:
                node.modify(coid, price=instrument.price(rng.choice(("0.98", "0.992"))))
    elif action == "price":
        venue.set_price(instrument.symbol, instrument.price(rng.choice(("0.984", "0.989", "1.0"))))
    else:
        fault = rng.choice(("drop_stream", "lose_next_submit_response", "corrupt_next_event"))
        with contextlib.suppress(NotSupported):
            getattr(venue, fault)()
            if fault != "drop_stream":  # consumed by the next placement or event
                node.submit(Side.BUY, instrument.quantity)
    node.clock.advance(rng.choice((0.0, 0.5, 1.0)))
    _settle_broker(node)


def _settle_broker(node: Driver) -> None:
    """Let every restart the broker has scheduled happen (its backoff elapses)."""
    node.sync(brokers=False)
    for _ in range(20):
        scheduled = [e for e in node.seen.items if node.broker_event(K.RESTART_SCHEDULED)(e)]
        restarted = [e for e in node.seen.items if node.broker_event(K.RESTARTED)(e)]
        if len(scheduled) <= len(restarted):
            return
        last = scheduled[-1]
        node.clock.advance(last.delay or 0.0)
        node.wait_broker(K.RESTARTED, last.generation)
        node.sync(brokers=False)
    raise AssertionError("the broker keeps restarting")

"""The shared half of the broker contract (``BrokerBase``), on a tiny adapter and on paper.

The tiny adapter answers what it is told to: its submits and cancels stay in
flight until the test finishes them, so the base's ordering is visible. The
OMS's reports and the breaker's replies go to one recorder: messages from one
sender to one recipient arrive in order, so "the reply came and no rejection
before it" proves no rejection was sent. ``ask`` is the barrier that says
every earlier message was handled; nothing here sleeps or times anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from tradenode import BrokerConnectionError, BrokerTimeoutError
from tradenode.actors import BrokerReply, BrokerRequest, Outcome, QuoteSubscription, RateObservation
from tradenode.brokers import IN_FLIGHT, Answer, BrokerBase, BrokerLink, refuse_if_expired

# order_keys is the base's internal rule for which requests wait for each other.
from tradenode.brokers._base import order_keys
from tradenode.brokers.paper import PaperBroker, PaperLink, PaperVenue
from tradenode.messages import (
    CancelAllOrders,
    CancelOrder,
    ModifyOrder,
    OrderRejected,
    OrderType,
    QueryOrder,
    Quote,
    Side,
    SubmitOrder,
)
from tradenode.sim import paper_sim_config
from tradenode.supervision import (
    Actor,
    ActorSystem,
    Address,
    Backoff,
    ChildSpec,
    EventRecorder,
    ManualClock,
    SupervisionEventKind,
    SupervisorSpec,
    add_child,
)

from ._supervision_helpers import is_event, wait_running

D = Decimal
K = SupervisionEventKind


# -- a tiny adapter -----------------------------------------------------------------------


@dataclass(frozen=True)
class Finish:
    """The venue answered in-flight request ``seq`` (with these rate counters)."""

    seq: int
    rates: tuple[RateObservation, ...] = ()


@dataclass(frozen=True)
class Publish:
    quote: Quote


class Fail:
    """Make the incarnation fail (as a lost connection would)."""


class Ping:
    """An ask that returns once every earlier message was handled."""


class TinyBroker(BrokerBase[BrokerLink]):
    """Submits and cancels stay in flight until ``Finish``; modifies and cancel-alls are
    answered at once; a query fails in transport; ``reject-*`` submits are refused."""

    def __init__(
        self, *, reports_to: Address, link: BrokerLink, hooks: EventRecorder, live: set[str]
    ) -> None:
        super().__init__("tiny", reports_to=reports_to, link=link)
        self.hooks = hooks
        self.live = live
        self.in_flight: dict[int, BrokerRequest] = {}

    def on_start(self) -> None:
        self.link.note_connected()
        self.link.note_reconciled()

    def _later(self, request: BrokerRequest) -> Answer:
        self.in_flight[request.seq] = request
        return IN_FLIGHT

    def submit(self, request: BrokerRequest, command: SubmitOrder) -> Answer:
        self.hooks(("submit", command.client_order_id))
        if command.client_order_id.startswith("reject"):
            return self.reject(request, OrderRejected, command.client_order_id, "NO", "not today")
        return self._later(request)

    def cancel(self, request: BrokerRequest, command: CancelOrder) -> Answer:
        self.hooks(("cancel", command.client_order_id))
        return self._later(request)

    def modify(self, request: BrokerRequest, command: ModifyOrder) -> Answer:
        self.hooks(("modify", command.client_order_id))
        return BrokerReply(request.seq, Outcome.OK)

    def query(self, request: BrokerRequest, command: QueryOrder) -> Answer:
        self.hooks(("query", command.client_order_id))
        raise BrokerConnectionError("wire cut", broker=self.name)

    def cancel_all(self, request: BrokerRequest, command: CancelAllOrders) -> Answer:
        self.hooks(("cancel_all", command.symbol))
        return BrokerReply(request.seq, Outcome.OK)

    def live_at_venue(self, client_order_id: str) -> bool:
        return client_order_id in self.live

    def on_subscribed(self, subscription: QuoteSubscription) -> None:
        self.hooks(("subscribed", subscription.symbols))

    def on_message(self, message: Any) -> Any:
        if isinstance(message, Finish):
            request = self.in_flight.pop(message.seq)
            with self.completing(request):
                self.send_reply(request, BrokerReply(request.seq, Outcome.OK), rates=message.rates)
        elif isinstance(message, Publish):
            self.publish_quote(message.quote)
        elif isinstance(message, Fail):
            raise BrokerConnectionError("connection lost", broker=self.name)
        elif isinstance(message, Ping):
            return "pong"
        else:
            return super().on_message(message)
        return None


class Recorder(Actor):
    def __init__(self, sink: EventRecorder) -> None:
        self.sink = sink

    def receive(self, message: Any) -> Any:
        self.sink(message)


class Rig:
    def __init__(self, system: ActorSystem, events: EventRecorder, clock: ManualClock) -> None:
        self.clock = clock
        self.inbox = EventRecorder()
        """The OMS's reports and the breaker's replies, in the order they arrived."""
        self.hooks = EventRecorder()
        self.link = BrokerLink()
        self.live: set[str] = set()
        system.start(SupervisorSpec("root", children=(ChildSpec("inbox", self._inbox),)))
        self.oms = wait_running(system, events, "/root/inbox")
        assert system.root is not None
        self.broker = add_child(
            system.root,
            ChildSpec(
                "broker",
                lambda: TinyBroker(
                    reports_to=self.oms, link=self.link, hooks=self.hooks, live=self.live
                ),
                backoff=Backoff(1.0, 1.0, random_factor=0.0),
            ),
        )
        self.seq = 0

    def _inbox(self) -> Actor:
        return Recorder(self.inbox)

    def tell(self, command: Any, *, deadline: float | None = None) -> int:
        self.seq += 1
        self.broker.tell(BrokerRequest(self.seq, command, self.oms, deadline=deadline))
        return self.seq

    def reply(self, seq: int) -> BrokerReply:
        found = self.inbox.wait_for(lambda m: isinstance(m, BrokerReply) and m.seq == seq)
        assert len(found) == 1, found
        reply: BrokerReply = found[0]
        return reply

    def before_reply(self, seq: int) -> list[Any]:
        """What the inbox got before the reply to ``seq``."""
        reply = self.reply(seq)
        items = self.inbox.items
        return items[: items.index(reply)]

    def hook_calls(self) -> list[Any]:
        assert self.broker.ask(Ping()) == "pong"
        return self.hooks.items


@pytest.fixture
def rig(system: ActorSystem, events: EventRecorder, clock: ManualClock) -> Rig:
    return Rig(system, events, clock)


def submit(coid: str, symbol: str = "BTCUSDT", venue: str = "tiny") -> SubmitOrder:
    return SubmitOrder(
        client_order_id=coid,
        strategy_id="s1",
        venue=venue,
        symbol=symbol,
        side=Side.BUY,
        order_type=OrderType.MARKET,
        quantity=D("0.1"),
    )


def cancel(coid: str) -> CancelOrder:
    return CancelOrder(client_order_id=coid, venue="tiny", symbol="BTCUSDT")


def quote(symbol: str, bid: str) -> Quote:
    return Quote(venue="tiny", symbol=symbol, bid=D(bid), ask=D(bid) + 1, ts_ns=1)


# -- deadlines ---------------------------------------------------------------------------------


def test_a_request_past_its_deadline_is_answered_timeout_and_never_reaches_the_adapter(
    rig: Rig, clock: ManualClock
) -> None:
    stale = rig.tell(submit("s1"), deadline=clock.monotonic())
    fresh = rig.tell(submit("s2"), deadline=clock.monotonic() + 5)
    reply = rig.reply(stale)
    assert (reply.outcome, reply.detail) == (Outcome.TIMEOUT, "expired unsent")
    assert rig.hook_calls() == [("submit", "s2")]
    rig.broker.tell(Finish(fresh))
    assert rig.reply(fresh).outcome is Outcome.OK


def test_refuse_if_expired_is_the_same_check_for_work_off_the_actors_thread() -> None:
    command = submit("s1", venue="tiny")
    refuse_if_expired(BrokerRequest(1, command, _nobody(), deadline=None), lambda: 1e9)
    refuse_if_expired(BrokerRequest(1, command, _nobody(), deadline=10.0), lambda: 9.9)
    with pytest.raises(BrokerTimeoutError):
        refuse_if_expired(BrokerRequest(1, command, _nobody(), deadline=10.0), lambda: 10.0)


def _nobody() -> Address:
    return None  # type: ignore[return-value]  # never told anything here


# -- one request at a time per order ---------------------------------------------------------


def test_requests_for_one_order_go_one_at_a_time_and_others_do_not_wait(rig: Rig) -> None:
    first = rig.tell(submit("a"))
    then = rig.tell(cancel("a"))
    other = rig.tell(submit("b"))
    replace = rig.tell(
        ModifyOrder(
            client_order_id="b",
            venue="tiny",
            symbol="BTCUSDT",
            price=D("1"),
            new_client_order_id="b2",
        )
    )
    # The cancel of "a" and the replace of "b" wait for their orders' submits.
    assert rig.hook_calls() == [("submit", "a"), ("submit", "b")]
    rig.broker.tell(Finish(first))
    assert rig.reply(first).outcome is Outcome.OK
    assert rig.hook_calls() == [("submit", "a"), ("submit", "b"), ("cancel", "a")]
    rig.broker.tell(Finish(other))
    assert rig.reply(other).outcome is Outcome.OK
    assert rig.reply(replace).outcome is Outcome.OK
    assert rig.hook_calls()[-1] == ("modify", "b")
    rig.broker.tell(Finish(then))
    assert rig.reply(then).outcome is Outcome.OK


def test_a_replace_is_one_request_for_both_the_order_and_its_replacement() -> None:
    modify = ModifyOrder(
        client_order_id="a", venue="tiny", symbol="BTCUSDT", price=D("1"), new_client_order_id="a2"
    )
    assert order_keys(modify) == ("a", "a2")
    assert order_keys(cancel("a")) == ("a",)
    assert order_keys(CancelAllOrders(venue="tiny")) == ()


def test_requests_still_waiting_when_the_incarnation_ends_are_answered_transport(
    rig: Rig, events: EventRecorder
) -> None:
    rig.tell(submit("a"))
    waiting = rig.tell(cancel("a"))
    rig.broker.tell(Fail())
    events.wait_for(is_event(K.FAILED, "/root/broker", 1))
    reply = rig.reply(waiting)
    assert (reply.outcome, reply.detail) == (Outcome.TRANSPORT, "broker restarted before sending")
    assert ("cancel", "a") not in rig.hooks.items


# -- reject plus reply, transport failures -----------------------------------------------------


def test_a_refusal_is_told_to_the_oms_and_answered_rejected(rig: Rig) -> None:
    seq = rig.tell(submit("reject-1"))
    reply = rig.reply(seq)
    assert (reply.outcome, reply.detail) == (Outcome.REJECTED, "NO: not today")
    rejections = [m for m in rig.before_reply(seq) if isinstance(m, OrderRejected)]
    assert [(r.client_order_id, r.code, r.reason, r.venue) for r in rejections] == [
        ("reject-1", "NO", "not today", "tiny")
    ]


def test_a_refused_repeat_of_an_order_live_at_the_venue_does_not_reject_it(rig: Rig) -> None:
    rig.live.add("reject-live")
    seq = rig.tell(submit("reject-live"))
    assert rig.reply(seq).outcome is Outcome.REJECTED
    assert not any(isinstance(m, OrderRejected) for m in rig.before_reply(seq))


def test_a_transport_failure_in_a_hook_is_answered_transport(rig: Rig) -> None:
    seq = rig.tell(QueryOrder(client_order_id="q", venue="tiny", symbol="BTCUSDT"))
    reply = rig.reply(seq)
    assert reply.outcome is Outcome.TRANSPORT and "wire cut" in reply.detail


# -- rate observations, quotes, counters ----------------------------------------------------------


def test_rate_observations_ride_on_the_replies_sent_while_an_answer_is_handled(rig: Rig) -> None:
    seen = RateObservation("REQUEST_WEIGHT:1M", 12.0, 6000.0, 60.0, sent_at=0.0)
    seq = rig.tell(submit("a"))
    rig.broker.tell(Finish(seq, rates=(seen,)))
    assert rig.reply(seq).rates == (seen,)
    after = rig.tell(CancelAllOrders(venue="tiny"))
    assert rig.reply(after).rates == ()


def test_quotes_fan_out_to_the_subscriptions_that_want_them(
    rig: Rig, system: ActorSystem, events: EventRecorder
) -> None:
    btc_only, everything = EventRecorder(), EventRecorder()
    assert system.root is not None
    a = add_child(system.root, ChildSpec("a", lambda: Recorder(btc_only)))
    b = add_child(system.root, ChildSpec("b", lambda: Recorder(everything)))
    rig.broker.tell(QuoteSubscription(a, ("BTCUSDT",)))
    rig.broker.tell(QuoteSubscription(b))
    published = [quote("BTCUSDT", "100"), quote("ETHUSDT", "10"), quote("BTCUSDT", "101")]
    for q in published:
        rig.broker.tell(Publish(q))
    assert everything.wait_for(lambda m: isinstance(m, Quote), count=3) == published
    assert btc_only.wait_for(lambda m: isinstance(m, Quote), count=2) == [
        published[0],
        published[2],
    ]
    assert rig.hook_calls() == [("subscribed", ("BTCUSDT",)), ("subscribed", ())]
    assert [s.subscriber for s in rig.link.subscriptions] == [a, b]


def test_the_links_counters_outlive_incarnations(
    rig: Rig, system: ActorSystem, events: EventRecorder, clock: ManualClock
) -> None:
    assert rig.link.wait_for_reconciliations(1, timeout=10)
    assert (rig.link.connections, rig.link.reconciliations) == (1, 1)
    rig.broker.tell(Fail())
    events.wait_for(is_event(K.RESTART_SCHEDULED, "/root/broker"))
    clock.advance(clock.wait_for_timers(1)[0])
    wait_running(system, events, "/root/broker", generation=2)
    assert rig.link.wait_for_reconciliations(2, timeout=10)
    assert (rig.link.connections, rig.link.reconciliations) == (2, 2)


def test_an_adapter_must_implement_every_request_hook() -> None:
    class Half(BrokerBase[BrokerLink]):
        def on_start(self) -> None:
            pass

        def submit(self, request: BrokerRequest, command: SubmitOrder) -> Answer:
            return IN_FLIGHT

    with pytest.raises(TypeError, match="cancel"):
        Half("half", reports_to=_nobody(), link=BrokerLink())  # type: ignore[abstract]


# -- the paper broker on the base ----------------------------------------------------------------


def test_the_paper_broker_never_sends_a_stale_request_and_counts_its_connection(
    system: ActorSystem, events: EventRecorder, clock: ManualClock
) -> None:
    venue = PaperVenue("paper", paper_sim_config(), seed=3, clock=clock)
    inbox = EventRecorder()
    link = PaperLink()
    system.start(SupervisorSpec("root", children=(ChildSpec("inbox", lambda: Recorder(inbox)),)))
    oms = wait_running(system, events, "/root/inbox")
    assert system.root is not None
    broker = add_child(
        system.root, ChildSpec("broker", lambda: PaperBroker(venue, reports_to=oms, link=link))
    )
    broker.tell(BrokerRequest(1, submit("p1", venue="paper"), oms, deadline=clock.monotonic()))
    broker.tell(BrokerRequest(2, submit("p2", venue="paper"), oms, deadline=None))
    replies = inbox.wait_for(lambda m: isinstance(m, BrokerReply), count=2)
    assert [(r.seq, r.outcome) for r in replies] == [(1, Outcome.TIMEOUT), (2, Outcome.OK)]
    assert venue.order("p1") is None and venue.order("p2") is not None
    assert (link.connections, link.reconciliations) == (1, 1)

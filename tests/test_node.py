from __future__ import annotations

from tradenode import Node
from tradenode.supervision import ChildSpec, EventRecorder, ManualClock, add_child

from ._supervision_helpers import Journal, wait_running, worker


def test_node_builds_the_tree_and_adds_children_at_runtime() -> None:
    node = Node(clock=ManualClock())
    events = EventRecorder()
    node.system.events.subscribe(events)
    with node:
        wait_running(node.system, events, "/tradenode/brokers")
        journal = Journal()
        adapter = add_child(
            node.supervisor("brokers"), ChildSpec("venue", worker("venue", journal))
        )
        assert adapter.ask("hello") == ("venue", 1, "hello")
        status = node.status()
        assert [c["name"] for c in status["tree"]["children"]] == [
            "core",
            "execution",
            "brokers",
        ]
        assert status["tree"]["children"][2]["children"][0]["path"] == "/tradenode/brokers/venue"
    assert node.system.is_terminated
    assert not adapter.is_alive


def test_client_order_ids_differ_between_node_starts_a_millisecond_apart() -> None:
    # The run tag is internal: it is what every client order id starts with.
    from tradenode._node import _run_tag

    now = 1_795_000_000_123_000_000
    assert _run_tag(now) != _run_tag(now + 1_000_000)
    assert len(_run_tag(now)) == 6


def test_the_longest_strategy_id_and_incarnation_still_make_venue_safe_ids() -> None:
    # The client id generator is internal: its largest counter must still fit the venue.
    from tradenode.actors._client_ids import ClientOrderIds
    from tradenode.messages import CLIENT_ORDER_ID_PATTERN

    ids = ClientOrderIds("zzzzzz" + "A" * 10 + "zzz")
    ids.restore(2**64 - 2)
    assert CLIENT_ORDER_ID_PATTERN.fullmatch(ids.next())

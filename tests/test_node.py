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
        assert [c["name"] for c in status["tree"]["children"]] == ["core", "brokers"]
        assert status["tree"]["children"][1]["children"][0]["path"] == "/tradenode/brokers/venue"
    assert node.system.is_terminated
    assert not adapter.is_alive

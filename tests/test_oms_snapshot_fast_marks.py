"""Incremental snapshots that visit only the orders looked up since the last one.

``OmsState._find`` adds every id it is asked for to the set the last
incremental snapshot handed it (``RecordMemo.marks``); the next one reuses
the entries of the other orders without comparing their values. A missed
mark would be a stale snapshot, and a wrong state after a restart: these
tests take a snapshot after every call of random runs (registrations,
submissions, every report incl. late fills and status reports that adopt
an order, replace chains, denials, cancels) and compare it, byte for byte,
with one taken from scratch.
"""

from __future__ import annotations

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from tradenode.actors import JournalEntry, OmsState

# The OMS's packer and its snapshots' memo are what is under test.
from tradenode.actors._oms_journal import pack_snapshot
from tradenode.actors._oms_snapshot import RecordMemo, StoredOrder, remembering

from .test_journal_entries import call_directly, oms_calls, quiet_oms
from .test_oms_snapshot_fast_packing import _fill, _large_state, _order


def _incremental(state: OmsState, memo: RecordMemo) -> bytes:
    with remembering(memo):
        plain = state.snapshot()
    return pack_snapshot(plain)


def _full(state: OmsState) -> bytes:
    return msgpack.packb(state.snapshot(), use_bin_type=True)


@settings(max_examples=80, deadline=None)
@given(
    calls=oms_calls(max_size=120),
    capacity=st.sampled_from((0, 1, 3, 50)),
    restart_at=st.none() | st.floats(0.0, 1.0),
)
def test_a_snapshot_after_every_call_is_byte_for_byte_a_full_one(
    calls: list[JournalEntry], capacity: int, restart_at: float | None
) -> None:
    """Also across a restore (new order objects, stored orders, no marks yet): the
    memo of the state before it must not be trusted for the one after."""
    memo = RecordMemo()
    state = OmsState(completed_capacity=capacity, latency_window=4)
    restart = None if restart_at is None else int(len(calls) * restart_at)
    with quiet_oms():
        for index, call in enumerate(calls):
            if index == restart:
                state = OmsState.restore(msgpack.unpackb(_full(state), raw=False))
            call_directly(state, call)
            assert _incremental(state, memo) == _full(state)


def test_only_a_snapshot_with_a_memo_starts_marking() -> None:
    state = _large_state(3, 3)
    assert state._looked_up is None
    state.snapshot()
    state.get("o-0")
    assert state._looked_up is None
    memo = RecordMemo()
    _incremental(state, memo)
    assert state._looked_up == set()
    state.get("o-1")
    _fill(state, "o-4")
    assert state._looked_up == {"o-1", "o-4"}
    _incremental(state, memo)
    assert state._looked_up == set()


def test_unmarked_orders_are_not_compared_and_marked_ones_are() -> None:
    """White box: a change made behind ``_find``'s back (never done by the state) is not
    seen, which shows the marks are what the memo goes by; a marked order is compared."""
    state = _large_state(300, 300)
    memo = RecordMemo()
    first = _incremental(state, memo)
    assert first == _full(state)
    behind = state._completed["o-5"]
    assert not isinstance(behind, StoredOrder)
    behind.reason = "changed behind the state's back"
    assert _incremental(state, memo) == first != _full(state)
    state.get("o-5")  # a lookup marks it: compared, found changed
    assert _incremental(state, memo) == _full(state)


def test_a_memo_trusts_only_the_marks_it_handed_out() -> None:
    state = _large_state(300, 10)
    mine, other = RecordMemo(), RecordMemo()
    _incremental(state, mine)
    _incremental(state, other)  # the state now marks for ``other``
    state._hot["o-305"].reason = "changed"  # behind the state's back
    state.track(_order("new"), 7)
    assert _incremental(state, mine) == _full(state)  # compares every order

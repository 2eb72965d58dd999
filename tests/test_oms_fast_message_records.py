"""``encode_message_call``: an order's intent and a venue's report, encoded without keyword
mappings, are the very bytes (and raise the very errors) of ``encode_call``.

The OMS records every order's ``REGISTER`` and every report through it
(``OmsJournal.record_message``, ``record_message_with_next``); ``encode_call``
is the reference, itself pinned to ``encode_entry`` in test_journal_write_path.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradenode.actors import EntryKind, decode_entry

# The OMS's per-order encoder and the generic one it must equal are what is under test.
from tradenode.actors._oms_entries import _REPORT_TYPES, encode_call, encode_message_call

# The OMS's write-ahead journal is what is under test; the node builds it.
from tradenode.actors._oms_journal import OmsJournal
from tradenode.journal import FsyncPolicy, Journal
from tradenode.messages import Message, OrderAccepted

from .test_codec import STRATEGIES
from .test_journal_write_path import order, outcome

K = EntryKind
D = Decimal

_KINDS_AND_TYPES = [(K.REGISTER, cls) for cls in STRATEGIES] + [
    (K.REPORT, cls) for cls in STRATEGIES
]


@pytest.mark.parametrize(
    ("kind", "cls"), _KINDS_AND_TYPES, ids=[f"{k.value}-{c.__name__}" for k, c in _KINDS_AND_TYPES]
)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), ts_ns=st.integers(0, 2**64 - 1))
def test_a_message_record_is_encode_calls_bytes_or_its_error(
    kind: EntryKind, cls: type[Message], data: st.DataObject, ts_ns: int
) -> None:
    message = data.draw(STRATEGIES[cls])
    expected = outcome(lambda: encode_call(kind, ts_ns, {"message": message}))
    assert outcome(lambda: encode_message_call(kind, ts_ns, message)) == expected
    if isinstance(expected, bytes):
        assert decode_entry(expected).message == message


@pytest.mark.parametrize(
    ("kind", "ts_ns", "message"),
    [
        (K.REGISTER, 1, OrderAccepted(client_order_id="a", venue="v", venue_order_id="1")),
        (K.REGISTER, 1, None),
        (K.REGISTER, -1, order()),
        (K.REGISTER, 2**64, order()),
        (K.REGISTER, True, order()),
        (K.REGISTER, 1, order(venue="paper\udc80")),
        (K.REGISTER, 1, order(quantity=D("1." + "1" * 100))),
        (K.REPORT, 1, order()),
        (K.SUBMITTED, 1, order()),
        ("register", 1, order()),
    ],
)
def test_what_encode_call_refuses_a_message_record_refuses_alike(
    kind: Any, ts_ns: Any, message: Any
) -> None:
    refused = outcome(lambda: encode_call(kind, ts_ns, {"message": message}))
    assert not isinstance(refused, bytes)
    assert outcome(lambda: encode_message_call(kind, ts_ns, message)) == refused


def test_the_report_types_are_the_ones_the_oms_journals() -> None:
    assert set(_REPORT_TYPES) <= set(STRATEGIES)


def test_the_journal_holds_what_record_would_have_appended(tmp_path: Path) -> None:
    accepted = OrderAccepted(client_order_id="s1-1", venue="paper", venue_order_id="9", ts_ns=3)
    payloads: list[bytes] = []
    for name, keywords in (("keywords", True), ("direct", False)):
        with Journal.open(tmp_path / name, fsync=FsyncPolicy.NONE) as journal:
            writer = OmsJournal(journal, write_ahead=False)
            if keywords:
                writer.record_with_next(K.REGISTER, 5, message=order())
                writer.record(K.REPORT, 6, message=accepted)
            else:
                writer.record_message_with_next(K.REGISTER, 5, order())
                writer.record_message(K.REPORT, 6, accepted)
            assert (writer.records, writer.last_seq) == (2, 2)
            payloads.append(b"|".join(payload for _, payload in journal.replay()))
    assert payloads[0] == payloads[1]

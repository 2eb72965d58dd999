"""The OMS's write-ahead log: every state change as a journal entry, and the
rule that an order leaves for a venue only once its intent is durable.

NautilusTrader writes its cache asynchronously, so an order can reach the
venue before anything on disk knows of it; a crash then leaves an order
nobody tracks. Here the OMS records the intent (``REGISTER``) and the
decision to send it (``SUBMITTED``) first, and holds the message for the
breaker until the journal says those records are fsynced. With group
commit that costs one fsync per group, not one per order.

This is on every order's path (four records: the intent, the submission,
the venue's accept and its fill), so recording skips building entry
objects (``encode_call``) and the journal only queues the bytes; the
group commit writes them (the intent and the submission in one append).
They are appended as not urgent: only the records a held message waits
for are urgent (a new order's submission, appended so) or urged, so under
leader/follower group
commit a report's record never starts an fsync that the next order's
intent would have to wait out (it rides along with that intent's, or is
committed a couple of milliseconds later).

Snapshots (every ``snapshot_every`` records) never stop the OMS for more
than taking the state's plain data, and that is incremental: completed
orders unchanged since the previous snapshot keep their encoded records,
and the records of new or changed ones are encoded later, by the packer
(``RecordMemo``). Encoding those, packing, writing, fsyncing and
compacting happen on the journal's snapshot thread
(``Journal.write_snapshot_later``), packed a piece at a time so that it
hands the GIL back to the OMS between pieces.
The plain data is built for the snapshot alone (fresh containers of
immutable values), so the OMS may go on changing its state meanwhile: the
snapshot is the state after record ``last_seq`` as it was when taken.
"""

from __future__ import annotations

import collections
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import msgpack

from ..supervision import Address
from ..supervision._collector import collector_paused
from ._oms_entries import EntryKind, encode_call, encode_message_call
from ._oms_snapshot import (
    PackedEntry,
    PackedMap,
    RecordMemo,
    pack_default,
    pack_item,
    remembering,
)

__all__ = ["DurableLog", "Held", "OmsJournal", "pack_snapshot"]

logger = logging.getLogger("tradenode.oms")


class DurableLog(Protocol):
    """What the OMS needs of a journal (``tradenode.journal.Journal`` is one)."""

    def append(self, payload: bytes, *, urgent: bool = True, lead: bool = False) -> int: ...

    def append_many(
        self, payloads: Iterable[bytes], *, urgent: bool = True, lead: bool = False
    ) -> int: ...

    def urge(self, seq: int) -> None: ...

    @property
    def durable_seq(self) -> int: ...

    def add_durability_listener(self, callback: Callable[[int], None]) -> None: ...

    def write_snapshot(self, seq: int, payload: bytes) -> Any: ...

    def write_snapshot_later(
        self, seq: int, encode: Callable[[], bytes], *, compact: bool = False
    ) -> None: ...

    def compact(self) -> Any: ...


#: Lists longer than this are packed item by item (``pack_snapshot``).
_PACK_CHUNK = 256
#: Items packed between two looks at the clock (in one call, unless they keep their packed
#: bytes), and the nanoseconds of packing after which the packer offers the GIL to other
#: threads (``pack_snapshot``).
_PACK_CHECK = 32
_PACK_SLICE_NS = 200_000
#: Intervals of ``snapshot_every`` records after which a snapshot is taken although the
#: last one is still being packed (``OmsJournal.snapshot_if_due``). It bounds the replay
#: on restart while the snapshot thread is held up (a stalled disk): 2 x the node's
#: default of 20,000 records is the 40,000 that 8 x its earlier 5,000 allowed.
_DEFER_LIMIT = 2


def pack_snapshot(plain: dict[str, Any]) -> bytes:
    """``msgpack.packb(plain, use_bin_type=True)``, byte for byte, a piece at a time.

    A snapshot taken inside ``remembering`` holds the records of changed
    completed orders as ``DeferredRecord``s: they are encoded here, as bytes.
    Its orders' entries keep their packed bytes (``pack_item``), so the
    orders unchanged since the previous snapshot are not packed again: the
    bytes are joined, and packing costs what changed.

    One ``packb`` call holds the GIL from start to end: tens of
    milliseconds for a busy node's state, during which no other thread
    (the OMS, the venues' threads) runs. Packed here item by item, the
    interpreter can switch threads between items, and after every
    ``_PACK_SLICE_NS`` of packing it offers the GIL at once: a fixed count
    of items (256) held it up to ~4 ms where completed orders' records are
    encoded (~10 us each), and a thread that wanted it then (the journal's
    commit thread with an order's records, the OMS) waited that long.
    msgpack writes a map or an array as its header and then its items, so
    the bytes are the same.
    """
    packer = msgpack.Packer(use_bin_type=True, default=pack_default)
    pieces: list[bytes] = []
    _pack_piecewise(packer, pieces, plain, 0)
    return b"".join(pieces)


def _pack_piecewise(packer: msgpack.Packer, pieces: list[bytes], value: Any, depth: int) -> None:
    if depth < 3 and type(value) is dict:
        pieces.append(packer.pack_map_header(len(value)))
        for key, item in value.items():
            pieces.append(packer.pack(key))
            _pack_piecewise(packer, pieces, item, depth + 1)
    elif depth < 3 and type(value) is list and len(value) > _PACK_CHUNK:
        pieces.append(packer.pack_array_header(len(value)))
        clock = time.perf_counter_ns
        offered = clock()
        pack_kept = functools.partial(pack_item, packer)
        for start in range(0, len(value), _PACK_CHECK):
            items = value[start : start + _PACK_CHECK]
            # A section's items are all of a kind, so the first says which way is
            # quicker; either gives the same bytes (``pack_item`` is ``packer.pack``).
            if type(items[0]) in _KEEPS_PACKED:
                pieces.extend(map(pack_kept, items))
            else:
                # Plain rows (executions, latencies): one call for the lot, the
                # array's header cut off (the bytes after it are its items').
                chunk = packer.pack(items)
                pieces.append(chunk[len(packer.pack_array_header(len(items))) :])
            if clock() - offered >= _PACK_SLICE_NS:
                time.sleep(0)  # lets a thread waiting for the GIL have it now
                offered = clock()
    else:
        pieces.append(pack_item(packer, value))


_KEEPS_PACKED = frozenset({PackedEntry, PackedMap})


class Held(NamedTuple):
    """A message for ``address`` that waits until record ``seq`` is durable.

    A tuple rather than a frozen dataclass: one is made per order, and a
    tuple costs a fraction of a frozen dataclass to build.
    """

    seq: int
    address: Address
    message: Any


@dataclass
class OmsJournal:
    log: DurableLog
    snapshot_every: int = 10_000
    """Records between snapshots of the whole state; they bound replay time."""
    write_ahead: bool = True
    """Hold messages until durable; off when the journal never fsyncs (policy
    ``none``), where waiting would be forever and buy nothing."""
    held: collections.deque[Held] = field(default_factory=collections.deque)
    """Messages waiting for their records to be durable, in the order they were held.
    Shared by the OMS thread (which holds) and the journal's committing thread
    (which releases, as the durability listener): ``_held_lock`` guards it."""
    idle: Callable[[], bool] | None = None
    """Whether the OMS has nothing else to do (nothing queued for the thread it
    runs on): then the record a message waits for is committed on that thread,
    at once (``record_to_send``). The OMS sets it when it starts; None: never."""
    records: int = 0
    last_seq: int = 0
    snapshotted_at: int = 0
    snapshots: int = 0

    def record(self, kind: EntryKind, ts_ns: int, **fields: Any) -> int:
        # Nobody waits for a record as such: those a held message needs are urged
        # (``send_when_durable``), so a fill's fsync never delays the next order's intent.
        return self._append(encode_call(kind, ts_ns, fields), False)

    def record_message(self, kind: EntryKind, ts_ns: int, message: Any) -> int:
        """``record(kind, ts_ns, message=message)``, without building keyword mappings
        (``encode_message_call``): every venue report of every order is recorded so."""
        return self._append(encode_message_call(kind, ts_ns, message), False)

    def idle_now(self) -> bool:
        """Whether the thread handling the OMS has nothing else queued (``idle``)."""
        idle = self.idle
        return idle is not None and idle()

    def record_to_send(
        self, kind: EntryKind, ts_ns: int, *, lead: bool | None = None, **fields: Any
    ) -> int:
        """``record`` a record that a message is about to be held for (``send_when_durable``).

        Appended urgent: its commit starts now, and ``send_when_durable`` need
        not ``urge`` it (one trip through the journal's lock fewer per order).
        The commit thread may make it durable before the message is held;
        ``send_when_durable`` then sends at once, as it always could.

        When the OMS is ``idle`` (nothing queued for the thread it runs on,
        its own or one it lent its turn to: ``ActorContext.mailbox_empty``)
        the append leads the group commit itself (``Journal.append(lead=True)``):
        that thread has nothing to do until this record is durable, so it
        writes and fsyncs rather than wake the commit thread and wait for it
        to get the GIL, and the message then goes at once. With messages
        waiting the OMS goes on to them and the commit thread commits.
        """
        if lead is None:
            lead = self.idle_now()
        seq = self._append(encode_call(kind, ts_ns, fields), True, lead)
        self._urgent_seq = seq
        return seq

    def _append(self, payload: bytes, urgent: bool, lead: bool = False) -> int:
        log = self.log
        deferred = self._deferred
        if deferred:
            deferred.append(payload)
            self._deferred = []
            seq = log.append_many(deferred, urgent=urgent, lead=lead)
            self.records += len(deferred)
        else:
            seq = log.append(payload, urgent=urgent, lead=lead)
            self.records += 1
        self.last_seq = seq
        if self.held and self.held[0].seq <= log.durable_seq:
            # Durable already (this append may have committed the group while the
            # listener was still on its way here).
            self.release(log.durable_seq)
        return seq

    def record_with_next(self, kind: EntryKind, ts_ns: int, **fields: Any) -> None:
        """Record like ``record``, but append it with the next record (or ``flush``).

        For an order's intent (``REGISTER``), always followed by its
        ``SUBMITTED`` (or ``DENIED``) in the same message: one append of both
        takes the journal's lock and schedules the group once instead of
        twice. Encoded now, so a bad entry raises here, as ``record`` would;
        the records keep their call order, since every ``record`` appends the
        deferred ones first, and the OMS calls ``flush`` after every message
        (also when its handler raised), so nothing deferred outlives the
        message that recorded it: snapshots and replay see what they saw.
        """
        self._deferred.append(encode_call(kind, ts_ns, fields))

    def record_message_with_next(self, kind: EntryKind, ts_ns: int, message: Any) -> None:
        """``record_with_next(kind, ts_ns, message=message)``, without keyword mappings
        (``encode_message_call``): every order's intent is recorded so."""
        self._deferred.append(encode_message_call(kind, ts_ns, message))

    def flush(self) -> None:
        """Append what ``record_with_next`` deferred (nothing when nothing was)."""
        deferred = self._deferred
        if not deferred:
            return
        self._deferred = []
        seq = self.log.append_many(deferred, urgent=False)
        self.records += len(deferred)
        self.last_seq = seq
        if self.held and self.held[0].seq <= self.log.durable_seq:
            self.release(self.log.durable_seq)

    _deferred: list[bytes] = field(default_factory=list, init=False, repr=False, compare=False)
    _urgent_seq: int = field(default=0, init=False, repr=False, compare=False)
    """The last record appended urgent (``record_to_send``): the journal commits it
    unasked, so ``send_when_durable`` does not urge it."""
    _memo: RecordMemo = field(default_factory=RecordMemo, init=False, repr=False, compare=False)
    _packed: threading.Event | None = field(default=None, init=False, repr=False, compare=False)
    """Set once the snapshot last handed to the journal is packed (``snapshot_if_due``)."""
    _held_lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def attach(self) -> None:
        """Release held messages from the journal's committing thread, as soon as it
        has fsynced their records (the journal's durability listener).

        Not a message to the OMS that the OMS then acts on: that was one more
        thread hop and one more OMS wake-up on every order's way out, for
        nothing the OMS decides (what to send, and in what order, was decided
        when the message was held). ``Address.tell`` is safe from any thread,
        and the held queue is shared under ``_held_lock``.
        """
        self.log.add_durability_listener(self.release)

    def _take(self, state: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The state's plain data, incrementally (``RecordMemo``) and out of the cyclic
        garbage collector's way (``supervision._collector``): its ~100k allocations would set
        off a cascade of collections on the OMS's thread, each walking them all."""
        with collector_paused(), remembering(self._memo):
            return state()

    def snapshot_now(self, state: Callable[[], dict[str, Any]]) -> int:
        """Snapshot the whole state at ``last_seq`` (an operator asked) and wait for it; returns
        the seq."""
        plain = self._take(state)
        self.log.write_snapshot(self.last_seq, pack_snapshot(plain))
        self.snapshotted_at = self.last_seq
        self.snapshots += 1
        self.log.compact()
        return self.last_seq

    def snapshot_if_due(self, state: Callable[[], dict[str, Any]]) -> None:
        """Snapshot the whole state once ``snapshot_every`` records have passed.

        Called only between messages, when the state is exactly what the
        records up to ``last_seq`` say, so replay resumes at the next record.
        Only taking the plain data (incrementally) is done here; the
        journal's snapshot thread packs, writes and compacts.

        Not while the snapshot thread is still packing the last one: a
        snapshot handed over then would only wait, and be replaced by the
        next unwritten (in a burst most were: 4 of 16 written), each taken
        on the OMS's thread for nothing. Taken once the last is packed, the
        snapshot written is the same or a later state, so replay is no
        longer; past ``_DEFER_LIMIT`` intervals it is taken anyway (the
        journal then replaces a waiting one, as it always could).
        """
        since = self.last_seq - self.snapshotted_at
        if since < self.snapshot_every:
            return
        packed = self._packed
        if (
            packed is not None
            and not packed.is_set()
            and since < _DEFER_LIMIT * self.snapshot_every
        ):
            return
        plain = self._take(state)
        done = threading.Event()

        def encode() -> bytes:
            try:
                return pack_snapshot(plain)
            finally:
                done.set()

        self.log.write_snapshot_later(self.last_seq, encode, compact=True)
        self._packed = done
        self.snapshotted_at = self.last_seq
        self.snapshots += 1

    def send_when_durable(self, seq: int, address: Address, message: Any) -> None:
        if not self.write_ahead:
            address.tell(message)
            return
        with self._held_lock:
            durable_seq = self.log.durable_seq
            if not self.held and durable_seq >= seq:
                address.tell(message)
                return
            self.held.append(Held(seq, address, message))
            if self.held[0].seq <= durable_seq:
                # Earlier messages' records are durable, their listener call not
                # here yet: send them now, and this one if it is durable too.
                self._release_locked(durable_seq)
                if not self.held:
                    return
        # Not durable when looked at under the lock: the journal moves
        # ``durable_seq`` before it calls its listeners, so the call for the
        # commit that covers ``seq`` is still to come, and it takes the lock
        # to release the message.
        if seq > self._urgent_seq:
            self.log.urge(seq)

    def release(self, durable_seq: int) -> None:
        """Send, in order, every held message whose records are now durable.

        The journal's durability listener (on its committing thread, see
        :meth:`attach`); also called on the OMS thread when it sees a record
        durable already. Telling under the lock keeps the order held.
        """
        with self._held_lock:
            self._release_locked(durable_seq)

    def _release_locked(self, durable_seq: int) -> None:
        held = self.held
        while held and held[0].seq <= durable_seq:
            first = held.popleft()
            first.address.tell(first.message)

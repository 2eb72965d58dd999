"""The local Binance venue's public market data: trade tape, klines, tickers, depth diffs.

Pure bookkeeping, no I/O and no locking (the exchange calls it under its
lock). Every symbol has a **public trade tape**, as on Binance: the
simulator's price moves are trades between other participants (one trade at
the new last price per ``step``/``set_price``), and the account's own fills
are trades too. Public trade ids count per symbol from 1, as Binance's do;
the account's ``myTrades``/``executionReport`` keep their own ids (the
simulator's), so the two numberings differ (on Binance they are the same
number). Klines, the 24 h ticker, ``avgPrice`` and aggregate trades are all
computed from the tape, so they agree with each other and with the streams.

Formats follow Binance's docs (``rest-api.md`` "Market Data endpoints",
``web-socket-streams.md``); see the endpoint handlers in
:mod:`~._binance_exchange` for the parameters.
"""

from __future__ import annotations

import bisect
import calendar
import datetime as dt
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any

__all__ = [
    "DAY_MS",
    "KLINE_INTERVALS",
    "PublicTrade",
    "Tape",
    "depth_diff",
    "kline_open",
    "parse_time_zone",
]

Json = dict[str, Any]

SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
_WEEK_MS = 7 * DAY_MS
#: 1970-01-05, the first Monday after the epoch: Binance's weekly klines open on Mondays.
_FIRST_MONDAY_MS = 4 * DAY_MS

#: ``interval`` values (case-sensitive) and their length; ``1M`` is a calendar month.
KLINE_INTERVALS: dict[str, int | None] = {
    "1s": SECOND_MS,
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": HOUR_MS,
    "2h": 2 * HOUR_MS,
    "4h": 4 * HOUR_MS,
    "6h": 6 * HOUR_MS,
    "8h": 8 * HOUR_MS,
    "12h": 12 * HOUR_MS,
    "1d": DAY_MS,
    "3d": 3 * DAY_MS,
    "1w": _WEEK_MS,
    "1M": None,
}

_TIME_ZONE = re.compile(r"^([+-]?)([0-9]{1,2})(?::([0-9]{2}))?$")
_PERCENT = Decimal("0.001")
_QUANTUM = Decimal("0.00000001")


def _fmt(value: Decimal) -> str:
    return format(value.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN), "f")


def parse_time_zone(raw: str | None) -> int | None:
    """A ``timeZone`` param as an offset in ms: ``-1:00``, ``05:45``, ``8``; None if invalid.

    Binance accepts hours, or hours and minutes, strictly within [-12:00, +14:00].
    """
    if raw is None:
        return 0
    match = _TIME_ZONE.match(raw)
    if match is None:
        return None
    sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3) or 0)
    if minutes >= 60:
        return None
    offset = hours * HOUR_MS + minutes * MINUTE_MS
    if sign == "-":
        offset = -offset
    if not -12 * HOUR_MS <= offset <= 14 * HOUR_MS:
        return None
    return offset


def _month_open(time_ms: int, offset: int, months: int = 0) -> int:
    local = dt.datetime.fromtimestamp((time_ms + offset) / 1000, tz=dt.UTC)
    index = local.year * 12 + local.month - 1 + months
    year, month = divmod(index, 12)
    start = calendar.timegm((year, month + 1, 1, 0, 0, 0))
    return start * 1000 - offset


def kline_open(time_ms: int, interval: str, offset: int = 0) -> int:
    """The open time of the ``interval`` kline holding ``time_ms`` (in a ``offset`` ms zone)."""
    size = KLINE_INTERVALS[interval]
    if size is None:
        return _month_open(time_ms, offset)
    base = _FIRST_MONDAY_MS if interval == "1w" else 0
    return (time_ms + offset - base) // size * size + base - offset


def _next_open(open_ms: int, interval: str, offset: int) -> int:
    size = KLINE_INTERVALS[interval]
    return _month_open(open_ms, offset, 1) if size is None else open_ms + size


def _previous_open(open_ms: int, interval: str, offset: int) -> int:
    size = KLINE_INTERVALS[interval]
    return _month_open(open_ms, offset, -1) if size is None else open_ms - size


@dataclass(frozen=True, slots=True)
class PublicTrade:
    """One trade on a symbol's public tape (``GET /api/v3/trades`` row, ``@trade`` event)."""

    id: int
    price: Decimal
    qty: Decimal
    time: int
    is_buyer_maker: bool
    taker: str
    """What took liquidity: trades of one taker at one price and time aggregate."""

    def row(self) -> Json:
        """``GET /api/v3/trades`` / ``historicalTrades``: Binance's field order."""
        return {
            "id": self.id,
            "price": _fmt(self.price),
            "qty": _fmt(self.qty),
            "quoteQty": _fmt(self.price * self.qty),
            "time": self.time,
            "isBuyerMaker": self.is_buyer_maker,
            "isBestMatch": True,
        }

    def event(self, symbol: str, now: int) -> Json:
        """The ``<symbol>@trade`` payload (``b``/``a`` were removed on 2024-06-05)."""
        return {
            "e": "trade",
            "E": now,
            "s": symbol,
            "t": self.id,
            "p": _fmt(self.price),
            "q": _fmt(self.qty),
            "T": self.time,
            "m": self.is_buyer_maker,
            "M": True,
        }


@dataclass(slots=True)
class _Aggregate:
    id: int
    price: Decimal
    qty: Decimal
    first_id: int
    last_id: int
    time: int
    is_buyer_maker: bool
    taker: str

    def row(self) -> Json:
        return {
            "a": self.id,
            "p": _fmt(self.price),
            "q": _fmt(self.qty),
            "f": self.first_id,
            "l": self.last_id,
            "T": self.time,
            "m": self.is_buyer_maker,
            "M": True,
        }


@dataclass(frozen=True, slots=True)
class _Candle:
    open_time: int
    close_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    count: int
    taker_buy_volume: Decimal
    taker_buy_quote: Decimal
    first_id: int
    last_id: int

    def row(self) -> list[Any]:
        """One ``GET /api/v3/klines`` row: 12 entries, numbers as strings but times and count."""
        return [
            self.open_time,
            _fmt(self.open),
            _fmt(self.high),
            _fmt(self.low),
            _fmt(self.close),
            _fmt(self.volume),
            self.close_time,
            _fmt(self.quote_volume),
            self.count,
            _fmt(self.taker_buy_volume),
            _fmt(self.taker_buy_quote),
            "0",
        ]

    def event(self, symbol: str, interval: str, now: int, *, closed: bool) -> Json:
        """The ``<symbol>@kline_<interval>`` payload."""
        return {
            "e": "kline",
            "E": now,
            "s": symbol,
            "k": {
                "t": self.open_time,
                "T": self.close_time,
                "s": symbol,
                "i": interval,
                "f": self.first_id,
                "L": self.last_id,
                "o": _fmt(self.open),
                "c": _fmt(self.close),
                "h": _fmt(self.high),
                "l": _fmt(self.low),
                "v": _fmt(self.volume),
                "n": self.count,
                "x": closed,
                "q": _fmt(self.quote_volume),
                "V": _fmt(self.taker_buy_volume),
                "Q": _fmt(self.taker_buy_quote),
                "B": "0",
            },
        }


@dataclass(slots=True)
class Tape:
    """One symbol's public trades, in order, with their aggregates."""

    symbol: str
    trades: list[PublicTrade] = field(default_factory=list)
    times: list[int] = field(default_factory=list)
    aggregates: list[_Aggregate] = field(default_factory=list)

    def append(
        self, price: Decimal, qty: Decimal, time: int, *, is_buyer_maker: bool, taker: str
    ) -> PublicTrade:
        trade = PublicTrade(len(self.trades) + 1, price, qty, time, is_buyer_maker, taker)
        self.trades.append(trade)
        self.times.append(time)
        last = self.aggregates[-1] if self.aggregates else None
        if (
            last is not None
            and last.taker == taker
            and last.price == price
            and last.time == time
            and last.is_buyer_maker == is_buyer_maker
        ):
            last.qty += qty
            last.last_id = trade.id
        else:
            self.aggregates.append(
                _Aggregate(
                    len(self.aggregates) + 1,
                    price,
                    qty,
                    trade.id,
                    trade.id,
                    time,
                    is_buyer_maker,
                    taker,
                )
            )
        return trade

    @property
    def last(self) -> PublicTrade | None:
        return self.trades[-1] if self.trades else None

    # -- trades -----------------------------------------------------------------------

    def recent(self, limit: int) -> list[Json]:
        return [trade.row() for trade in self.trades[-limit:]]

    def historical(self, from_id: int | None, limit: int) -> list[Json]:
        if from_id is None:
            return self.recent(limit)
        start = max(from_id, 1) - 1
        return [trade.row() for trade in self.trades[start : start + limit]]

    def aggregate(
        self, from_id: int | None, start: int | None, end: int | None, limit: int
    ) -> list[Json]:
        rows = [
            agg
            for agg in self.aggregates
            if (from_id is None or agg.id >= from_id)
            and (start is None or agg.time >= start)
            and (end is None or agg.time <= end)
        ]
        rows = rows[:limit] if from_id is not None or start is not None else rows[-limit:]
        return [agg.row() for agg in rows]

    def _between(self, start: int, end: int) -> Sequence[PublicTrade]:
        """Trades with ``start <= time <= end``."""
        low = bisect.bisect_left(self.times, start)
        high = bisect.bisect_right(self.times, end)
        return self.trades[low:high]

    def _before(self, time: int) -> PublicTrade | None:
        index = bisect.bisect_left(self.times, time)
        return self.trades[index - 1] if index else None

    # -- klines -----------------------------------------------------------------------

    def candle(self, open_time: int, interval: str, offset: int) -> _Candle:
        """The kline opening at ``open_time``; one without trades is flat at the last price."""
        close_time = _next_open(open_time, interval, offset) - 1
        trades = self._between(open_time, close_time)
        if not trades:
            before = self._before(open_time)
            price = before.price if before is not None else Decimal(0)
            zero = Decimal(0)
            return _Candle(
                open_time, close_time, price, price, price, price,
                zero, zero, 0, zero, zero, -1, -1,
            )  # fmt: skip
        with localcontext() as context:
            context.prec = 60
            volume = sum((t.qty for t in trades), Decimal(0))
            quote = sum((t.qty * t.price for t in trades), Decimal(0))
            takers = [t for t in trades if not t.is_buyer_maker]
            buy_volume = sum((t.qty for t in takers), Decimal(0))
            buy_quote = sum((t.qty * t.price for t in takers), Decimal(0))
        return _Candle(
            open_time,
            close_time,
            trades[0].price,
            max(t.price for t in trades),
            min(t.price for t in trades),
            trades[-1].price,
            volume,
            quote,
            len(trades),
            buy_volume,
            buy_quote,
            trades[0].id,
            trades[-1].id,
        )

    def klines(
        self,
        interval: str,
        *,
        now: int,
        start: int | None,
        end: int | None,
        limit: int,
        offset: int = 0,
    ) -> list[list[Any]]:
        """Binance's selection: newest ``limit`` klines, or the oldest from ``start``, up to ``end``.

        Every interval from the first trade's to the current one has a kline
        (the current one still open); intervals without trades are flat at
        the previous close with zero volume.
        """
        if not self.trades:
            return []
        first = kline_open(self.times[0], interval, offset)
        current = kline_open(now, interval, offset)
        latest = current if end is None else min(current, kline_open(end, interval, offset))
        opens: list[int] = []
        if start is not None:
            open_time = kline_open(start, interval, offset)
            if open_time < start:
                open_time = _next_open(open_time, interval, offset)
            open_time = max(open_time, first)
            while open_time <= latest and len(opens) < limit:
                opens.append(open_time)
                open_time = _next_open(open_time, interval, offset)
        else:
            open_time = latest
            while open_time >= first and len(opens) < limit:
                opens.append(open_time)
                open_time = _previous_open(open_time, interval, offset)
            opens.reverse()
        return [self.candle(open_time, interval, offset).row() for open_time in opens]

    # -- tickers ----------------------------------------------------------------------

    def ticker(self, now: int, book: Json, *, full: bool) -> Json:
        """``GET /api/v3/ticker/24hr``: the rolling 24 h window ending now (FULL or MINI)."""
        open_time = now - DAY_MS
        trades = self._between(open_time, now)
        last = self.last
        last_price = last.price if last is not None else Decimal(0)
        zero = Decimal(0)
        with localcontext() as context:
            context.prec = 60
            if trades:
                open_price = trades[0].price
                high = max(t.price for t in trades)
                low = min(t.price for t in trades)
                volume = sum((t.qty for t in trades), zero)
                quote = sum((t.qty * t.price for t in trades), zero)
                average = quote / volume if volume else zero
                before = self._before(open_time)
                previous = before.price if before is not None else open_price
                first_id, last_id = trades[0].id, trades[-1].id
            else:
                open_price = high = low = previous = last_price
                volume = quote = average = zero
                first_id = last_id = -1
            change = last_price - open_price
            percent = change * 100 / open_price if open_price else zero
        if not full:
            return {
                "symbol": self.symbol,
                "openPrice": _fmt(open_price),
                "highPrice": _fmt(high),
                "lowPrice": _fmt(low),
                "lastPrice": _fmt(last_price),
                "volume": _fmt(volume),
                "quoteVolume": _fmt(quote),
                "openTime": open_time,
                "closeTime": now,
                "firstId": first_id,
                "lastId": last_id,
                "count": len(trades),
            }
        return {
            "symbol": self.symbol,
            "priceChange": _fmt(change),
            "priceChangePercent": format(percent.quantize(_PERCENT, ROUND_HALF_EVEN), "f"),
            "weightedAvgPrice": _fmt(average),
            "prevClosePrice": _fmt(previous),
            "lastPrice": _fmt(last_price),
            "lastQty": _fmt(last.qty if last is not None and trades else zero),
            "bidPrice": book["bidPrice"],
            "bidQty": book["bidQty"],
            "askPrice": book["askPrice"],
            "askQty": book["askQty"],
            "openPrice": _fmt(open_price),
            "highPrice": _fmt(high),
            "lowPrice": _fmt(low),
            "volume": _fmt(volume),
            "quoteVolume": _fmt(quote),
            "openTime": open_time,
            "closeTime": now,
            "firstId": first_id,
            "lastId": last_id,
            "count": len(trades),
        }

    def average_price(self, now: int, minutes: int = 5) -> Json:
        """``GET /api/v3/avgPrice``: the volume-weighted price of the last ``minutes``."""
        trades = self._between(now - minutes * MINUTE_MS, now)
        last = self.last
        with localcontext() as context:
            context.prec = 60
            volume = sum((t.qty for t in trades), Decimal(0))
            if volume:
                price = sum((t.qty * t.price for t in trades), Decimal(0)) / volume
            else:
                price = last.price if last is not None else Decimal(0)
        return {
            "mins": minutes,
            "price": _fmt(price),
            "closeTime": last.time if last is not None else 0,
        }

    def kline_events(
        self, interval: str, sent_open: int | None, now: int, offset: int = 0
    ) -> Iterator[tuple[int, Json]]:
        """The ``@kline_<interval>`` events after the last trade: the previous kline closed
        (``x`` true) if a new one began, then the current one; with each its open time."""
        last = self.last
        if last is None:
            return
        open_time = kline_open(last.time, interval, offset)
        if sent_open is not None and sent_open != open_time:
            closed = self.candle(sent_open, interval, offset)
            yield sent_open, closed.event(self.symbol, interval, now, closed=True)
        yield (
            open_time,
            self.candle(open_time, interval, offset).event(
                self.symbol, interval, now, closed=False
            ),
        )


def depth_diff(
    before: Sequence[tuple[Decimal, Decimal]], after: Sequence[tuple[Decimal, Decimal]]
) -> list[list[str]]:
    """Price levels that changed from ``before`` to ``after``; a removed level has quantity 0."""
    old = dict(before)
    new = dict(after)
    changed = [[_fmt(price), _fmt(qty)] for price, qty in after if old.get(price) != qty]
    changed.extend([_fmt(price), _fmt(Decimal(0))] for price, _ in before if price not in new)
    return changed

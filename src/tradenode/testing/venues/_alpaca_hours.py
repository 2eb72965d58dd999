"""The fake Alpaca's market clock: US equity sessions in New York time, pure.

Alpaca's sessions (``docs.alpaca.markets`` "Orders at Alpaca", "24/5 trading"):
pre-market 04:00-09:30, regular 09:30-16:00 and after-hours 16:00-20:00
New York time on weekdays. What this model leaves out, on purpose: the NYSE
holiday calendar and early closes (every weekday is a trading day) and the
overnight (BOATS) session, which is treated as closed.

:class:`MarketHours` answers "which session is it" for an epoch-ms reading,
and can be forced open or closed (``force``) so a test need not pick a New
York time of day; a forced-open market is in its regular session whatever
the clock says.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["NEW_YORK", "MarketHours", "Session", "iso_ns", "ny_iso"]

NEW_YORK = ZoneInfo("America/New_York")
_PRE_OPEN = time(4, 0)
_OPEN = time(9, 30)
_CLOSE = time(16, 0)
_AFTER_CLOSE = time(20, 0)


class Session(enum.Enum):
    """Where the market is in its day; ``CLOSED`` also covers weekends and overnight."""

    CLOSED = "closed"
    PRE_MARKET = "pre_market"
    REGULAR = "regular"
    AFTER_HOURS = "after_hours"

    @property
    def is_extended(self) -> bool:
        return self in (Session.PRE_MARKET, Session.AFTER_HOURS)


def _trading_day(day: date) -> bool:
    return day.weekday() < 5


def _at(day: date, moment: time) -> datetime:
    return datetime.combine(day, moment, NEW_YORK)


def iso_ns(ns: int) -> str:
    """RFC 3339 in UTC with nanoseconds, as Alpaca writes order times (``...T14:30:00.123456789Z``)."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{nanos:09d}Z"


def ny_iso(moment: datetime) -> str:
    """RFC 3339 in New York time with its offset, as ``/v2/clock`` writes it."""
    return moment.astimezone(NEW_YORK).isoformat()


class MarketHours:
    """The session at a given time, with an optional override (``force``)."""

    def __init__(self) -> None:
        self.forced: bool | None = None
        """True: regular session whatever the time; False: closed; None: by the clock."""

    def session(self, ms: int) -> Session:
        if self.forced is not None:
            return Session.REGULAR if self.forced else Session.CLOSED
        moment = datetime.fromtimestamp(ms / 1000, UTC).astimezone(NEW_YORK)
        if not _trading_day(moment.date()):
            return Session.CLOSED
        now = moment.timetz().replace(tzinfo=None)
        if _OPEN <= now < _CLOSE:
            return Session.REGULAR
        if _PRE_OPEN <= now < _OPEN:
            return Session.PRE_MARKET
        if _CLOSE <= now < _AFTER_CLOSE:
            return Session.AFTER_HOURS
        return Session.CLOSED

    @staticmethod
    def trading_date(ms: int) -> date:
        """The New York date of ``ms``: a new date starts a new day of DAY orders."""
        return datetime.fromtimestamp(ms / 1000, UTC).astimezone(NEW_YORK).date()

    def is_open(self, ms: int) -> bool:
        return self.session(ms) is Session.REGULAR

    @staticmethod
    def next_open(ms: int) -> datetime:
        """The next regular open strictly after ``ms`` (Alpaca: tomorrow's while open)."""
        moment = datetime.fromtimestamp(ms / 1000, UTC).astimezone(NEW_YORK)
        day = moment.date()
        while True:
            if _trading_day(day) and _at(day, _OPEN) > moment:
                return _at(day, _OPEN)
            day += timedelta(days=1)

    @staticmethod
    def next_close(ms: int) -> datetime:
        """The next regular close strictly after ``ms`` (today's while open)."""
        moment = datetime.fromtimestamp(ms / 1000, UTC).astimezone(NEW_YORK)
        day = moment.date()
        while True:
            if _trading_day(day) and _at(day, _CLOSE) > moment:
                return _at(day, _CLOSE)
            day += timedelta(days=1)

    @staticmethod
    def calendar(start: date, end: date) -> list[dict[str, str]]:
        """``GET /v2/calendar`` rows: every weekday in ``[start, end]`` (no holidays)."""
        rows: list[dict[str, str]] = []
        day = start
        while day <= end and len(rows) < 10_000:
            if _trading_day(day):
                rows.append(
                    {
                        "date": day.isoformat(),
                        "open": "09:30",
                        "close": "16:00",
                        "session_open": "0400",
                        "session_close": "2000",
                        "settlement_date": (day + timedelta(days=1)).isoformat(),
                    }
                )
            day += timedelta(days=1)
        return rows

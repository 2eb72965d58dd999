"""The fake Alpaca's market clock: US equity sessions in New York time, pure.

Alpaca's sessions (``docs.alpaca.markets`` "Orders at Alpaca", "24/5 trading"):
pre-market 04:00-09:30, regular 09:30-16:00 and after-hours 16:00-20:00
New York time on trading days: weekdays but the NYSE holidays of 2025-2028
(:data:`NYSE_HOLIDAYS`), with the early closes at 13:00 (after-hours to
17:00, :data:`NYSE_EARLY_CLOSES`), as NYSE Group published them (its
holiday calendars announced 2024-11-08 and 2025-12-23). Outside those years
every weekday trades.
What this model leaves out, on purpose: the overnight (BOATS) session,
which is treated as closed.

:class:`MarketHours` answers "which session is it" for an epoch-ms reading,
and can be forced open or closed (``force``) so a test need not pick a New
York time of day; a forced-open market is in its regular session whatever
the clock says.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = [
    "NEW_YORK",
    "NYSE_EARLY_CLOSES",
    "NYSE_HOLIDAYS",
    "MarketHours",
    "Session",
    "iso_ns",
    "ny_iso",
]

NEW_YORK = ZoneInfo("America/New_York")
_PRE_OPEN = time(4, 0)
_OPEN = time(9, 30)
_CLOSE = time(16, 0)
_AFTER_CLOSE = time(20, 0)
_EARLY_CLOSE = time(13, 0)
_EARLY_AFTER_CLOSE = time(17, 0)

NYSE_HOLIDAYS = frozenset(
    date.fromisoformat(day)
    for day in (
        # 2025 (9 January: the national day of mourning for President Carter)
        "2025-01-01", "2025-01-09", "2025-01-20", "2025-02-17", "2025-04-18",
        "2025-05-26", "2025-06-19", "2025-07-04", "2025-09-01", "2025-11-27",
        "2025-12-25",
        # 2026
        "2026-01-01", "2026-01-19", "2026-02-16", "2026-04-03", "2026-05-25",
        "2026-06-19", "2026-07-03", "2026-09-07", "2026-11-26", "2026-12-25",
        # 2027
        "2027-01-01", "2027-01-18", "2027-02-15", "2027-03-26", "2027-05-31",
        "2027-06-18", "2027-07-05", "2027-09-06", "2027-11-25", "2027-12-24",
        # 2028 (1 January is a Saturday: no New Year's Day holiday is observed)
        "2028-01-17", "2028-02-21", "2028-04-14", "2028-05-29", "2028-06-19",
        "2028-07-04", "2028-09-04", "2028-11-23", "2028-12-25",
    )
)  # fmt: skip
"""Days the NYSE is closed (the exchange's published holiday calendar)."""

NYSE_EARLY_CLOSES = frozenset(
    date.fromisoformat(day)
    for day in ("2025-07-03", "2025-11-28", "2025-12-24", "2026-11-27", "2026-12-24",
                "2027-11-26", "2028-07-03", "2028-11-24")
)  # fmt: skip
"""Days the regular session ends at 13:00 New York time."""


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
    return day.weekday() < 5 and day not in NYSE_HOLIDAYS


def _close(day: date) -> time:
    return _EARLY_CLOSE if day in NYSE_EARLY_CLOSES else _CLOSE


def _after_close(day: date) -> time:
    return _EARLY_AFTER_CLOSE if day in NYSE_EARLY_CLOSES else _AFTER_CLOSE


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
        close, after_close = _close(moment.date()), _after_close(moment.date())
        if _OPEN <= now < close:
            return Session.REGULAR
        if _PRE_OPEN <= now < _OPEN:
            return Session.PRE_MARKET
        if close <= now < after_close:
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
            if _trading_day(day) and _at(day, _close(day)) > moment:
                return _at(day, _close(day))
            day += timedelta(days=1)

    @staticmethod
    def calendar(start: date, end: date) -> list[dict[str, str]]:
        """``GET /v2/calendar`` rows: every trading day in ``[start, end]``."""
        rows: list[dict[str, str]] = []
        day = start
        while day <= end and len(rows) < 10_000:
            if _trading_day(day):
                rows.append(
                    {
                        "date": day.isoformat(),
                        "open": "09:30",
                        "close": _close(day).strftime("%H:%M"),
                        "session_open": "0400",
                        "session_close": _after_close(day).strftime("%H%M"),
                        "settlement_date": (day + timedelta(days=1)).isoformat(),
                    }
                )
            day += timedelta(days=1)
        return rows

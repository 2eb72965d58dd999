"""The live web dashboard the control API serves at ``/`` (also ``/dashboard``).

One HTML page, a small vanilla-JS file and a stylesheet, shipped in
``_static/`` (no build step, no external URL: the page works on a machine
without internet). The page reads ``GET /v1/events``: server-sent events,
each a compact snapshot of the node (orders, recent fills, positions, PnL and
its history, breaker states, the supervision tree with restart counts,
pending approvals, recent alerts), pushed when it changed, polled from the
node every ``interval`` seconds of wall time (a UI refresh, not trading time).

The snapshot reads the node through the same calls the control API's reads
use; the buttons (kill switch, halt, resume) call the control API's own
action endpoints with the token the operator typed, so every click is
authorised and audited exactly as ``tradenode ctl`` would be.

Numbers are display strings rounded to the instrument's precision: the price
and size increments each venue's adapter learned from the venue and publishes
in its status (``Node.status()["connections"][venue]["instruments"]``, also in
the snapshot as ``instruments``), else the config's ``risk.instruments``' tick
and lot sizes, else a sane default: never a raw ``Decimal`` with thirty digits.
"""

from __future__ import annotations

import importlib.resources
import json
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from .._status import tree_dict
from ..actors._breaker import GetBreakerStats
from ..actors._control import GetFills, GetOpenOrders, GetOrder, GetPositions, GetRiskStatus

if TYPE_CHECKING:
    from ._app import ControlApp

__all__ = ["Dashboard", "Precision"]

logger = logging.getLogger("tradenode.control")

_ASK_TIMEOUT = 10.0
_FILLS_SHOWN = 50
_ORDERS_SHOWN = 100
_PNL_POINTS = 600
_ALERTS_SHOWN = 20
_KEEPALIVE_SECONDS = 15.0
_DEFAULT_QTY_PLACES = 8
_MONEY_PLACES = 2
_INCREMENTS_EVERY = 5.0

_ASSETS: dict[str, str] = {
    "dashboard.html": "text/html; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}


def _places(step: Decimal) -> int:
    """Decimal places of a tick or lot size (0.01 -> 2, 5 -> 0, 0.0005 -> 4)."""
    exponent = step.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _fixed(value: Decimal, places: int) -> str:
    try:
        rounded = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    except InvalidOperation:  # too many digits for the context: shown as it is
        return format(value, "f")
    if rounded == 0:
        rounded = abs(rounded)  # never "-0.00"
    return format(rounded, "f")


Steps = tuple[Decimal | None, Decimal | None]
"""A listing's (price increment, size increment); None: not known."""


class Precision:
    """How many decimals a listing's prices and quantities are shown with.

    From the increments the venue publishes for the listing (``listings``, by
    venue and symbol), else the config's ``risk.instruments`` (``tick_size``,
    ``lot_size``) for the symbol; otherwise prices get 2 decimals at or above
    1 and up to 8 significant decimals below, quantities up to 8 decimals with
    trailing zeros dropped. Money (PnL, commissions) gets 2 decimals.
    """

    def __init__(
        self,
        instruments: dict[str, tuple[Decimal, Decimal]],
        listings: dict[tuple[str, str], Steps] | None = None,
    ) -> None:
        self._instruments = instruments
        self._listings = listings or {}

    @classmethod
    def from_config(cls, config: Any) -> Precision:
        rules = getattr(getattr(config, "risk", None), "instruments", {}) or {}
        return cls({symbol: (r.tick_size, r.lot_size) for symbol, r in rules.items()})

    def with_published(self, published: dict[str, dict[str, dict[str, str]]]) -> Precision:
        """This precision with the increments the venues publish (venue -> symbol ->
        ``price_increment``/``size_increment``), which win over the config's."""
        listings = {
            (venue, symbol): (
                _step(entry.get("price_increment")),
                _step(entry.get("size_increment")),
            )
            for venue, symbols in published.items()
            for symbol, entry in symbols.items()
        }
        return Precision(self._instruments, listings)

    def _steps(self, symbol: str, venue: str | None) -> Steps:
        tick, lot = self._listings.get((str(venue), symbol), (None, None))
        known = self._instruments.get(symbol)
        if known is not None:
            tick, lot = tick or known[0], lot or known[1]
        return tick, lot

    def price(self, symbol: str, value: Decimal | None, venue: str | None = None) -> str:
        if value is None:
            return ""
        tick = self._steps(symbol, venue)[0]
        if tick is not None:
            return _fixed(value, _places(tick))
        if abs(value) >= 1 or value == 0:
            return _fixed(value, 2)
        # A small price: 8 significant decimals after its leading zeros.
        leading = -value.adjusted() - 1
        return _trim(_fixed(value, min(leading + 8, 12)))

    def quantity(self, symbol: str, value: Decimal | None, venue: str | None = None) -> str:
        if value is None:
            return ""
        lot = self._steps(symbol, venue)[1]
        if lot is not None:
            return _fixed(value, _places(lot))
        return _trim(_fixed(value, _DEFAULT_QTY_PLACES))

    @staticmethod
    def money(value: Decimal) -> str:
        return _fixed(value, _MONEY_PLACES)


def _step(value: object) -> Decimal | None:
    """A published increment: a positive decimal string, else None."""
    if not isinstance(value, str):
        return None
    try:
        step = Decimal(value)
    except InvalidOperation:
        return None
    return step if step.is_finite() and step > 0 else None


def _trim(text: str) -> str:
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


@dataclass(frozen=True, slots=True)
class _Sample:
    at_ms: int
    total: Decimal


class Dashboard:
    """The dashboard's routes on a :class:`ControlApp` and the snapshots it pushes."""

    def __init__(
        self,
        app: ControlApp,
        *,
        read_refusal: Callable[[Request], Response | None],
        interval: float = 0.5,
    ) -> None:
        self.app = app
        self._read_refusal = read_refusal
        """The control API's own check for reads (a token off loopback)."""
        self.interval = interval
        self._configured = Precision.from_config(app.node.config)
        self.precision = self._configured
        self._published: dict[str, dict[str, dict[str, str]]] = {}
        self._published_at: float | None = None
        self._lock = threading.Lock()
        self._pnl: deque[_Sample] = deque(maxlen=_PNL_POINTS)
        self._closed = threading.Event()
        self._snapshot_lock = threading.Lock()
        self._cached: tuple[float, str] | None = None
        self.streams = 0
        """Event streams open now."""

    def close(self) -> None:
        """End every event stream."""
        self._closed.set()

    def routes(self) -> list[Route]:
        return [
            Route("/", self._index, methods=["GET"]),
            Route("/dashboard", self._page("dashboard.html"), methods=["GET"]),
            Route("/dashboard/dashboard.js", self._page("dashboard.js"), methods=["GET"]),
            Route("/dashboard/dashboard.css", self._page("dashboard.css"), methods=["GET"]),
            Route("/v1/events", self._events, methods=["GET"]),
            Route("/v1/snapshot", self._snapshot, methods=["GET"]),
        ]

    # -- endpoints ------------------------------------------------------------------

    async def _index(self, request: Request) -> Response:
        return RedirectResponse("/dashboard", status_code=307)

    def _page(self, name: str) -> Callable[[Request], Any]:
        media_type = _ASSETS[name]

        async def endpoint(request: Request) -> Response:
            body = _asset(name)
            return Response(
                body,
                media_type=media_type,
                headers={
                    "Cache-Control": "no-store",
                    # Nothing from elsewhere: no CDN, no inline script, no framing.
                    "Content-Security-Policy": (
                        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"
                    ),
                    "X-Content-Type-Options": "nosniff",
                },
            )

        return endpoint

    async def _snapshot(self, request: Request) -> Response:
        """One snapshot as plain JSON (what each event carries)."""
        refused = self._check_read(request)
        if refused is not None:
            return refused
        text = await anyio.to_thread.run_sync(self.snapshot_text)
        return Response(text, media_type="application/json")

    async def _events(self, request: Request) -> Response:
        refused = self._check_read(request)
        if refused is not None:
            return refused
        return StreamingResponse(
            self._stream(request),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    def _check_read(self, request: Request) -> Response | None:
        return self._read_refusal(request)

    def _stream(self, request: Request) -> _EventStream:
        return _EventStream(self, request)

    # -- the snapshot ---------------------------------------------------------------

    def snapshot_text(self) -> str:
        """The snapshot as the JSON an event carries (secrets redacted); streams polling
        within half an interval of each other share one read of the node."""
        with self._snapshot_lock:
            now = time.monotonic()
            if self._cached is not None and now - self._cached[0] < self.interval / 2:
                return self._cached[1]
            text = self.app.redactor.dumps(self.snapshot())
            self._cached = (now, text)
            return text

    def snapshot(self) -> dict[str, Any]:
        """What the page shows, read from the node (blocking asks: a worker thread)."""
        node = self.app.node
        oms = node.oms
        risk = node.risk.ask(GetRiskStatus(), _ASK_TIMEOUT)
        open_orders = oms.ask(GetOpenOrders(), _ASK_TIMEOUT)
        fills = list(oms.ask(GetFills(), _ASK_TIMEOUT))
        recent = fills[-_FILLS_SHOWN:]
        ids = [order.client_order_id for order in open_orders]
        for fill in reversed(recent):
            if fill.client_order_id not in ids:
                ids.append(fill.client_order_id)
        views = [oms.ask(GetOrder(i), _ASK_TIMEOUT) for i in ids[:_ORDERS_SHOWN]]
        positions = oms.ask(GetPositions(), _ASK_TIMEOUT)
        self._learn_increments()
        orders = [self._order(view) for view in views if view is not None]
        realized = sum((p.realized_pnl for p in positions), Decimal(0))
        unrealized = sum((p.unrealized_pnl for p in positions), Decimal(0))
        total = realized + unrealized
        tree = node.tree()
        return {
            "node": node.config.node.name,
            "trading_state": risk["state"],
            "execution_mode": node.execution_mode().value,
            "orders": orders,
            "fills": [self._fill(f) for f in reversed(recent)],
            "fill_count": len(fills),
            "positions": [self._position(p) for p in positions if p.quantity or p.realized_pnl],
            "pnl": {
                "realized": Precision.money(realized),
                "unrealized": Precision.money(unrealized),
                "total": Precision.money(total),
                "history": self._pnl_history(total),
            },
            "breakers": self._breakers(),
            "tree": None if tree is None else tree_dict(tree),
            "approvals": [pending.describe() for pending in node.pending_approvals()],
            # The alert dispatcher's own history, with each alert's delivery state.
            "alerts": node.observability.recent_alerts(_ALERTS_SHOWN),
            "instruments": self._published,
        }

    def _learn_increments(self) -> None:
        """The increments the venues publish in their statuses, read every
        ``_INCREMENTS_EVERY`` seconds (they change when a broker connects, and
        ``Node.status()`` asks every actor)."""
        now = time.monotonic()
        if self._published_at is not None and now - self._published_at < _INCREMENTS_EVERY:
            return
        connections = self.app.node.status().get("connections") or {}
        published = {
            str(venue): {
                str(symbol): {str(k): str(v) for k, v in entry.items()}
                for symbol, entry in info["instruments"].items()
                if isinstance(entry, dict)
            }
            for venue, info in connections.items()
            if isinstance(info, dict) and isinstance(info.get("instruments"), dict)
        }
        self._published, self._published_at = published, now
        self.precision = self._configured.with_published(published)

    def _pnl_history(self, total: Decimal) -> list[list[Any]]:
        """Total PnL over time: a point each time it changed (wall clock, ms)."""
        with self._lock:
            if not self._pnl or self._pnl[-1].total != total:
                self._pnl.append(_Sample(int(time.time() * 1000), total))
            return [[s.at_ms, Precision.money(s.total)] for s in self._pnl]

    def _breakers(self) -> dict[str, dict[str, Any]]:
        breakers = {}
        for entry in self.app.node.directory.venues():
            stats = entry.breaker.ask(GetBreakerStats(), _ASK_TIMEOUT)
            breakers[entry.name] = {
                "state": stats.circuit_state,
                "failures": stats.failure_count,
                "dlq": stats.dlq_size,
                "in_flight": stats.in_flight,
            }
        return breakers

    def _order(self, view: Any) -> dict[str, Any]:
        order = view.order
        p = self.precision
        return {
            "client_order_id": order.client_order_id,
            "strategy": order.strategy_id,
            "venue": order.venue,
            "symbol": order.symbol,
            "side": order.side.value,
            "type": order.order_type.value,
            "quantity": p.quantity(order.symbol, order.quantity, order.venue),
            "price": p.price(order.symbol, order.price, order.venue),
            "status": view.status.value,
            "filled": p.quantity(order.symbol, view.filled_quantity, order.venue),
            "avg_price": p.price(order.symbol, view.avg_fill_price, order.venue),
        }

    def _fill(self, fill: Any) -> dict[str, Any]:
        p = self.precision
        return {
            "execution_id": fill.execution_id,
            "client_order_id": fill.client_order_id,
            "venue": fill.venue,
            "symbol": fill.symbol,
            "side": fill.side.value,
            "quantity": p.quantity(fill.symbol, fill.last_quantity, fill.venue),
            "price": p.price(fill.symbol, fill.last_price, fill.venue),
            "commission": Precision.money(fill.commission),
        }

    def _position(self, position: Any) -> dict[str, Any]:
        p = self.precision
        return {
            "venue": position.venue,
            "symbol": position.symbol,
            "quantity": p.quantity(position.symbol, position.quantity, position.venue),
            "avg_price": p.price(position.symbol, position.avg_price, position.venue),
            "realized": Precision.money(position.realized_pnl),
            "unrealized": Precision.money(position.unrealized_pnl),
        }


def _asset(name: str) -> bytes:
    return importlib.resources.files("tradenode.control").joinpath("_static", name).read_bytes()


class _EventStream:
    """Server-sent events for one viewer: a snapshot whenever it differs from the last
    one sent, a comment now and then so proxies keep the stream open.

    An iterator object, not an async generator: the server drops it mid-stream when
    the viewer goes or the node stops, and an async generator dropped unexhausted is a
    ResourceWarning under trio (warnings are errors in the tests).
    """

    def __init__(self, dashboard: Dashboard, request: Request) -> None:
        self._dashboard = dashboard
        self._request = request
        self._last: str | None = None
        self._quiet = 0.0
        self._started = False
        self._waits = False
        with dashboard._lock:
            dashboard.streams += 1
        self._ended = weakref.finalize(self, _stream_ended, dashboard)

    def __aiter__(self) -> _EventStream:
        return self

    async def __anext__(self) -> str:
        dashboard = self._dashboard
        if not self._started:
            self._started = True
            return "retry: 2000\n\n"
        while not dashboard._closed.is_set():
            if self._waits:
                if await self._request.is_disconnected():
                    break
                await anyio.sleep(dashboard.interval)
                self._quiet += dashboard.interval
            self._waits = True
            try:
                text = await anyio.to_thread.run_sync(dashboard.snapshot_text)
            except Exception as exc:  # an event saying so, never a dead stream
                logger.exception("dashboard: a snapshot failed")
                message = dashboard.app.redactor.scrub(f"{type(exc).__name__}: {exc}")
                text = json.dumps({"error": message})
            if text != self._last:
                self._last, self._quiet = text, 0.0
                return f"event: snapshot\ndata: {text}\n\n"
            if self._quiet >= _KEEPALIVE_SECONDS:
                self._quiet = 0.0
                return ": keepalive\n\n"
        self._ended()
        raise StopAsyncIteration


def _stream_ended(dashboard: Dashboard) -> None:
    with dashboard._lock:
        dashboard.streams -= 1

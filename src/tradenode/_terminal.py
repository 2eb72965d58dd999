"""``tradenode run``'s status view: rich tables on a terminal, plain lines otherwise.

The node's status carries money as exact ``Decimal`` text (an average price
may hold 30 digits); an operator reads it at the instrument's precision:
prices at the tick's decimal places, quantities at the lot's, money at 2
places when nothing better is known. The ticks and lots are what each venue's
adapter learned from the venue and publishes in its status
(``status["connections"][venue]["instruments"]``, see
``tradenode.brokers._increments``), else the config's ``risk.instruments``. Rendering is pure (a status mapping in,
a renderable or lines out) so a test can render it to a string; only
:func:`terminal_view` asks the node.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from .actors._control import GetFills, GetOpenOrders, GetOrder

if TYPE_CHECKING:
    from ._node import Node

__all__ = [
    "Precision",
    "PrecisionMap",
    "StatusDisplay",
    "plain_status",
    "render_status",
    "state_style",
    "terminal_view",
]

#: Places shown for money (PnL, commission) and for a price whose tick is unknown.
MONEY_PLACES = 2
#: A quantity whose lot is unknown shows its own digits, at most this many places.
MAX_QUANTITY_PLACES = 8
#: Below this many columns the tables leave the order and execution ids out.
NARROW = 100
#: Orders and fills the view lists (most recent last).
RECENT = 10

_STYLES: Mapping[str, str] = {
    # Orders
    "FILLED": "green",
    "PARTIALLY_FILLED": "cyan",
    "ACCEPTED": "blue",
    "SUBMITTED": "blue",
    "INITIALIZED": "dim",
    "PENDING_CANCEL": "yellow",
    "PENDING_REPLACE": "yellow",
    "CANCELED": "dim",
    "EXPIRED": "dim",
    "REJECTED": "red",
    "DENIED": "red",
    # Breakers (their states are lower case in the status)
    "CLOSED": "green",
    "HALF_OPEN": "yellow",
    "OPEN": "red",
    # Risk / trading state
    "ACTIVE": "green",
    "REDUCE_ONLY": "yellow",
    "HALTED": "bold red",
    # Supervision tree
    "RUNNING": "green",
    "RESTARTING": "yellow",
    "STOPPED": "dim",
    "FAILED": "red",
}


def state_style(state: object) -> str:
    """The colour of a state's name (order status, breaker, risk, actor); '' if none."""
    return _STYLES.get(str(getattr(state, "value", state)).upper(), "")


def _places(step: Decimal) -> int:
    exponent = step.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _decimal(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _step(value: object) -> Decimal | None:
    """A published increment: a positive decimal, else None."""
    number = _decimal(value) if isinstance(value, str | Decimal) else None
    return number if number is not None and number > 0 else None


def _fixed(value: object, places: int) -> str:
    number = _decimal(value)
    if number is None:
        return "-" if value is None else str(value)
    quantum = Decimal(1).scaleb(-places)
    try:
        return f"{number.quantize(quantum, rounding=ROUND_HALF_EVEN):f}"
    except InvalidOperation:  # beyond the context's precision: show it as it is
        return f"{number:f}"


@dataclass(frozen=True, slots=True)
class Precision:
    """One instrument's display steps: ``tick`` for prices, ``lot`` for quantities."""

    tick: Decimal | None = None
    lot: Decimal | None = None


@dataclass(frozen=True, slots=True)
class PrecisionMap:
    """Display precision per (venue, symbol), else per symbol, else the defaults.

    ``by_listing`` is learned from the venues' statuses (:meth:`learn`);
    ``by_symbol`` comes from the config's ``risk.instruments``."""

    by_listing: Mapping[tuple[str, str], Precision] = field(default_factory=dict)
    by_symbol: Mapping[str, Precision] = field(default_factory=dict)
    money_places: int = MONEY_PLACES

    def of(self, venue: str | None, symbol: str | None) -> Precision:
        found = self.by_listing.get((str(venue), str(symbol)))
        by_symbol = self.by_symbol.get(str(symbol), Precision())
        if found is None:
            return by_symbol
        return Precision(found.tick or by_symbol.tick, found.lot or by_symbol.lot)

    def price(self, venue: str | None, symbol: str | None, value: object) -> str:
        tick = self.of(venue, symbol).tick
        return _fixed(value, self.money_places if tick is None else _places(tick))

    def quantity(self, venue: str | None, symbol: str | None, value: object) -> str:
        lot = self.of(venue, symbol).lot
        if lot is not None:
            return _fixed(value, _places(lot))
        number = _decimal(value)
        if number is None:
            return "-" if value is None else str(value)
        own = _places(number) if number != 0 else 0
        return _fixed(number, min(own, MAX_QUANTITY_PLACES))

    def money(self, value: object) -> str:
        return _fixed(value, self.money_places)

    @classmethod
    def from_node(cls, node: Node) -> PrecisionMap:
        """The config's ``risk.instruments`` per symbol (the operator's copy of the venue
        filters); what the venues publish is added from each status (:meth:`learn`)."""
        symbols = {
            symbol: Precision(rules.tick_size, rules.lot_size)
            for symbol, rules in node.config.risk.instruments.items()
        }
        return cls(by_symbol=symbols)

    def learn(self, status: Mapping[str, Any]) -> PrecisionMap:
        """This map plus the increments each venue publishes in ``status``
        (``connections[venue]["instruments"][symbol]``: ``price_increment``,
        ``size_increment``), which win over what was known of that listing."""
        listings = dict(self.by_listing)
        connections = status.get("connections")
        for venue, info in (connections if isinstance(connections, Mapping) else {}).items():
            published = info.get("instruments") if isinstance(info, Mapping) else None
            for symbol, entry in (published if isinstance(published, Mapping) else {}).items():
                if not isinstance(entry, Mapping):
                    continue
                known = listings.get((str(venue), str(symbol)), Precision())
                listings[(str(venue), str(symbol))] = Precision(
                    _step(entry.get("price_increment")) or known.tick,
                    _step(entry.get("size_increment")) or known.lot,
                )
        if listings == self.by_listing:
            return self
        return PrecisionMap(listings, self.by_symbol, self.money_places)


def terminal_view(node: Node, *, recent: int = RECENT) -> dict[str, Any]:
    """``node.status()`` plus the open orders and the latest fills and their orders.

    Like the status itself this never raises: an OMS that does not answer
    leaves the lists out and says why under ``view_error``."""
    status = node.status()
    if node.system.is_terminated or "error" in status:
        return status
    try:
        open_ids = [order.client_order_id for order in node.oms.ask(GetOpenOrders(), timeout=5)]
        fills = list(node.oms.ask(GetFills(), timeout=5))[-recent:]
        # The orders of the latest fills, oldest first, then the open orders.
        ids = list(dict.fromkeys(fill.client_order_id for fill in fills))
        ids = [i for i in ids if i not in open_ids] + open_ids
        views = [node.oms.ask(GetOrder(i), timeout=5) for i in ids[-recent:]]
    except Exception as exc:  # noqa: BLE001 - a status view must never take the node down
        status["view_error"] = f"{type(exc).__name__}: {exc}"
        return status
    status["orders"] = [_order_row(view) for view in views if view is not None]
    status["recent_fills"] = [_fill_row(fill) for fill in fills]
    return status


def _order_row(view: Any) -> dict[str, Any]:
    order = view.order
    return {
        "client_order_id": order.client_order_id,
        "venue": order.venue,
        "symbol": order.symbol,
        "side": str(order.side.value),
        "type": str(order.order_type.value),
        "quantity": str(order.quantity),
        "price": None if order.price is None else str(order.price),
        "status": str(view.status.value),
        "filled": str(view.filled_quantity),
        "avg_price": None if view.avg_fill_price is None else str(view.avg_fill_price),
    }


def _fill_row(fill: Any) -> dict[str, Any]:
    return {
        "client_order_id": fill.client_order_id,
        "execution_id": fill.execution_id,
        "venue": fill.venue,
        "symbol": fill.symbol,
        "side": str(fill.side.value),
        "quantity": str(fill.last_quantity),
        "price": str(fill.last_price),
        "commission": str(fill.commission),
    }


# -- rich -----------------------------------------------------------------------------------


def _styled(state: object) -> Text:
    text = str(getattr(state, "value", state))
    return Text(text, style=state_style(text))


def _pnl(value: object, precision: PrecisionMap) -> Text:
    number = _decimal(value)
    style = "" if number is None or number == 0 else ("green" if number > 0 else "red")
    return Text(precision.money(value), style=style)


def render_status(
    status: Mapping[str, Any], precision: PrecisionMap, *, width: int = 100, final: bool = False
) -> RenderableType:
    """The status as rich tables: totals, venues and breakers, positions, orders,
    fills, risk, the supervision tree with restart counts. Below ``NARROW`` columns
    the order and execution ids are left out (the figures matter more)."""
    wide = width >= NARROW
    precision = precision.learn(status)
    parts: list[RenderableType] = [_header(status, precision, final)]
    if status.get("error"):
        parts.append(Text(f"status unavailable: {status['error']}", style="red"))
    if status.get("view_error"):
        parts.append(Text(f"orders and fills unavailable: {status['view_error']}", style="red"))
    parts.append(_venues_table(status))
    parts.append(_positions_table(status, precision))
    if status.get("orders"):
        parts.append(_orders_table(status["orders"], precision, wide=wide))
    if status.get("recent_fills"):
        parts.append(_fills_table(status["recent_fills"], precision, wide=wide))
    tree = status.get("tree")
    if isinstance(tree, dict):
        root = Tree(_tree_label(tree), guide_style="dim")
        _grow(root, tree)
        parts.append(root)
    return Group(*parts)


def _header(status: Mapping[str, Any], precision: PrecisionMap, final: bool) -> Text:
    text = Text()
    text.append(f"{status.get('node', '?')} ", style="bold")
    text.append("final summary" if final else "status", style="bold")
    text.append(
        f"  orders {status.get('total_orders', '?')}  fills {status.get('fills', '?')}"
        f"  open {status.get('open_orders', '-')}"
    )
    for name in ("rejections", "denials"):
        count = status.get(name, "?")
        text.append(f"  {name} ")
        # Refused orders are not listed (the OMS lists open and filled ones): red counts.
        text.append(str(count), style="red" if isinstance(count, int) and count > 0 else "")
    text.append("  realized PnL ")
    text.append_text(_pnl(status.get("realized_pnl"), precision))
    risk = status.get("risk")
    if isinstance(risk, dict):
        text.append("  risk ")
        text.append_text(_styled(risk.get("state")))
        text.append(f" (PnL {precision.money(risk.get('pnl'))})")
    return text


def _venues_table(status: Mapping[str, Any]) -> Table:
    table = Table(title="venues", title_justify="left", expand=False)
    for column in ("venue", "connected", "breaker", "failures", "dlq", "last failure"):
        table.add_column(column)
    venues: Mapping[str, Any] = status.get("venues") or {}
    breakers: Mapping[str, Any] = status.get("breakers") or {}
    for name in list(venues) + [b for b in breakers if b not in venues]:
        venue, breaker = venues.get(name) or {}, breakers.get(name) or {}
        connected = venue.get("connected")
        table.add_row(
            name,
            Text(
                "-" if connected is None else ("yes" if connected else "no"),
                style="" if connected is None else ("green" if connected else "red"),
            ),
            _styled(breaker.get("state", "-")),
            str(breaker.get("failures", "-")),
            str(breaker.get("dlq", "-")),
            str(venue.get("last_failure") or ""),
        )
    return table


def _positions_table(status: Mapping[str, Any], precision: PrecisionMap) -> Table:
    table = Table(title="positions", title_justify="left")
    table.add_column("venue")
    table.add_column("symbol")
    for column in ("quantity", "avg price", "realized PnL", "unrealized PnL"):
        table.add_column(column, justify="right")
    for p in status.get("positions", []):
        venue, symbol = p.get("venue"), p.get("symbol")
        table.add_row(
            str(venue),
            str(symbol),
            precision.quantity(venue, symbol, p.get("quantity")),
            precision.price(venue, symbol, p.get("avg_price")),
            _pnl(p.get("realized_pnl"), precision),
            _pnl(p.get("unrealized_pnl"), precision),
        )
    return table


def _orders_table(
    rows: Iterable[Mapping[str, Any]], precision: PrecisionMap, *, wide: bool
) -> Table:
    table = Table(title="orders", title_justify="left")
    for column in ("order", "venue", "symbol", "side", "type", "status")[0 if wide else 1 :]:
        table.add_column(column)
    for column in ("quantity", "price", "filled", "avg price"):
        table.add_column(column, justify="right")
    for row in rows:
        venue, symbol = row.get("venue"), row.get("symbol")
        ids = [str(row.get("client_order_id"))] if wide else []
        table.add_row(
            *ids,
            str(venue),
            str(symbol),
            str(row.get("side")),
            str(row.get("type")),
            _styled(row.get("status")),
            precision.quantity(venue, symbol, row.get("quantity")),
            precision.price(venue, symbol, row.get("price")),
            precision.quantity(venue, symbol, row.get("filled")),
            precision.price(venue, symbol, row.get("avg_price")),
        )
    return table


def _fills_table(
    rows: Iterable[Mapping[str, Any]], precision: PrecisionMap, *, wide: bool
) -> Table:
    table = Table(title="recent fills", title_justify="left")
    for column in ("execution", "order", "venue", "symbol", "side")[0 if wide else 2 :]:
        table.add_column(column)
    for column in ("quantity", "price", "commission"):
        table.add_column(column, justify="right")
    for row in rows:
        venue, symbol = row.get("venue"), row.get("symbol")
        ids = [str(row.get("execution_id")), str(row.get("client_order_id"))] if wide else []
        table.add_row(
            *ids,
            str(venue),
            str(symbol),
            str(row.get("side")),
            precision.quantity(venue, symbol, row.get("quantity")),
            precision.price(venue, symbol, row.get("price")),
            precision.money(row.get("commission")),
        )
    return table


def _tree_label(node: Mapping[str, Any]) -> Text:
    label = Text(f"{node.get('name')} ")
    label.append(str(node.get("state")), style=state_style(node.get("state")))
    restarts = node.get("restarts", 0)
    label.append(f" restarts={restarts}", style="yellow" if restarts else "dim")
    return label


def _grow(branch: Tree, node: Mapping[str, Any]) -> None:
    for child in node.get("children", []):
        _grow(branch.add(_tree_label(child)), child)


# -- plain ----------------------------------------------------------------------------------


def plain_status(
    status: Mapping[str, Any], precision: PrecisionMap, *, final: bool = False
) -> list[str]:
    """The same figures as plain lines (no colour, no box drawing): for logs and pipes."""
    precision = precision.learn(status)
    title = "final summary" if final else "status"
    lines = [
        f"--- {status.get('node', '?')} {title} ---",
        f"orders={status.get('total_orders', '?')} fills={status.get('fills', '?')} "
        f"open={status.get('open_orders', '-')} rejections={status.get('rejections', '?')} "
        f"denials={status.get('denials', '?')} "
        f"realized_pnl={precision.money(status.get('realized_pnl'))}",
    ]
    if status.get("error"):
        lines.append(f"status unavailable: {status['error']}")
    if status.get("view_error"):
        lines.append(f"orders and fills unavailable: {status['view_error']}")
    risk = status.get("risk")
    if isinstance(risk, dict):
        lines.append(
            f"risk: {risk.get('state')} pnl={precision.money(risk.get('pnl'))} "
            f"denials={risk.get('denials')}"
        )
    for p in status.get("positions", []):
        venue, symbol = p.get("venue"), p.get("symbol")
        lines.append(
            f"  {venue}:{symbol} qty={precision.quantity(venue, symbol, p.get('quantity'))} "
            f"avg={precision.price(venue, symbol, p.get('avg_price'))} "
            f"rpnl={precision.money(p.get('realized_pnl'))} "
            f"upnl={precision.money(p.get('unrealized_pnl'))}"
        )
    for row in status.get("orders", []):
        venue, symbol = row.get("venue"), row.get("symbol")
        lines.append(
            f"  order {row.get('client_order_id')} {venue}:{symbol} {row.get('side')} "
            f"{row.get('type')} {row.get('status')} "
            f"qty={precision.quantity(venue, symbol, row.get('quantity'))} "
            f"price={precision.price(venue, symbol, row.get('price'))} "
            f"filled={precision.quantity(venue, symbol, row.get('filled'))} "
            f"avg={precision.price(venue, symbol, row.get('avg_price'))}"
        )
    for row in status.get("recent_fills", []):
        venue, symbol = row.get("venue"), row.get("symbol")
        lines.append(
            f"  fill {row.get('execution_id')} {venue}:{symbol} {row.get('side')} "
            f"qty={precision.quantity(venue, symbol, row.get('quantity'))} "
            f"price={precision.price(venue, symbol, row.get('price'))} "
            f"commission={precision.money(row.get('commission'))}"
        )
    venues: Mapping[str, Any] = status.get("venues") or {}
    for name, breaker in (status.get("breakers") or {}).items():
        connected = (venues.get(name) or {}).get("connected")
        lines.append(
            f"breaker {name}: {breaker.get('state')} failures={breaker.get('failures', '-')} "
            f"dlq={breaker.get('dlq', '-')} connected={connected}"
        )
    tree = status.get("tree")
    if isinstance(tree, dict):
        lines.extend(_tree_lines(tree))
    return lines


def _tree_lines(node: Mapping[str, Any], indent: str = "") -> list[str]:
    lines = [f"{indent}{node.get('name')} [{node.get('state')}, restarts={node.get('restarts')}]"]
    for child in node.get("children", []):
        lines.extend(_tree_lines(child, indent + "  "))
    return lines


# -- tradenode run --------------------------------------------------------------------------


class StatusDisplay:
    """Where ``tradenode run`` shows the status: a region updated in place on a
    terminal (``rich.live.Live``), plain lines when the output is a pipe or a file.

    Live redirects stdout while it runs, so the run loop's other lines (kill
    switch, approvals console) still appear, above the region."""

    def __init__(self, node: Node, console: Console | None = None) -> None:
        self.node = node
        self.console = console or Console()
        self.precision = PrecisionMap.from_node(node)
        self._live: Live | None = None

    @property
    def in_place(self) -> bool:
        """True on a terminal: the view updates in place."""
        return self.console.is_terminal

    def __enter__(self) -> StatusDisplay:
        if self.in_place:
            self._live = Live(console=self.console, auto_refresh=False, transient=False)
            self._live.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def show(self) -> None:
        """The node's current status (asked now)."""
        view = terminal_view(self.node)
        # Kept for the final summary: a stopped node's status lists no venue's status.
        self.precision = self.precision.learn(view)
        if self._live is not None:
            renderable = render_status(view, self.precision, width=self.console.width)
            self._live.update(renderable, refresh=True)
        else:
            self._lines(plain_status(view, self.precision))

    def final(self, status: Mapping[str, Any]) -> None:
        """The summary once the node has stopped, printed below the live region."""
        self._stop()
        if self.in_place:
            width = self.console.width
            self.console.print(render_status(status, self.precision, width=width, final=True))
        else:
            self._lines(plain_status(status, self.precision, final=True))

    def _lines(self, lines: list[str]) -> None:
        self.console.file.write("\n".join(lines) + "\n")
        self.console.file.flush()

"""The node's operator plane: metrics, alerts, and the actor that watches the OMS.

``Observability`` is built by the node from its config. With ``metrics:``
or ``alerts:`` configured it adds one actor, ``/<node>/observer``, that
subscribes to every OMS event (order refusals, fills, routes, drifts,
trading-state changes) and feeds the latency histograms and the alert
rules; supervision events (escalations, a failed root) and breaker
transitions reach the rules directly. Nothing here is on the trading path:
the observer only listens, and alerts leave through a bounded queue.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, make_asgi_app

from ..actors._breaker_state import BreakerTransition, CircuitState
from ..actors._control import PositionDrift, Routed, Subscribe, Unsubscribe
from ..messages._messages import OrderDenied, OrderFilled, OrderRejected, TradingStateChanged
from ..supervision import (
    Actor,
    Address,
    ChildSpec,
    SupervisionEvent,
    SupervisionEventKind,
    add_child,
)
from ._alerts import Alert, AlertDispatcher, AlertRules
from ._metrics import LatencyHistograms, MetricsServer, NodeCollector
from ._settings import AlertKind, AlertsConfig, MetricsConfig

if TYPE_CHECKING:
    from .._node import Node
    from ..actors._breaker import BreakerStore

__all__ = ["Observability", "ObserverActor"]

logger = logging.getLogger("tradenode.observability")


class Observability:
    """What the node runs for its operators: the metrics endpoint and the alerts."""

    def __init__(self, node: Node) -> None:
        self._node = node
        config = node.config
        self.metrics_config: MetricsConfig | None = getattr(config, "metrics", None)
        alerts: AlertsConfig | None = getattr(config, "alerts", None)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(NodeCollector(node))
        self.latency = LatencyHistograms(self.registry)
        self.rules = AlertRules(alerts.rules if alerts is not None else ())
        self.alerts: AlertDispatcher | None = (
            AlertDispatcher(alerts, seed=config.node.seed) if alerts is not None else None
        )
        self.server: MetricsServer | None = None
        self._watched: set[int] = set()
        self._unsubscribe = node.system.events.subscribe(self._on_supervision)

    @property
    def enabled(self) -> bool:
        return self.metrics_config is not None or self.alerts is not None

    def asgi_app(self) -> Callable[..., Awaitable[None]]:
        """``/metrics`` as an ASGI app over the same registry, for mounting in another
        server (the control API). Its scrape asks the actors with blocking asks."""
        app: Callable[..., Awaitable[None]] = make_asgi_app(self.registry)
        return app

    def recent_alerts(self, limit: int | None = None) -> list[dict[str, object]]:
        """The most recent alerts, newest first, with their delivery state ([] without
        ``alerts:`` configured): what ``GET /v1/alerts`` and the dashboard show."""
        return [] if self.alerts is None else self.alerts.recent(limit)

    @property
    def metrics_url(self) -> str | None:
        return None if self.server is None else self.server.url

    def start(self, root: Address) -> None:
        """The observer actor under the root, then the metrics server (when configured)."""
        if not self.enabled:
            return
        node = self._node
        add_child(root, ChildSpec("observer", lambda: ObserverActor(node, self)))
        config = self.metrics_config
        if config is not None:
            self.server = MetricsServer(self.registry, config.host, config.port)
            logger.info("metrics at %s", self.server.url)

    def stop(self) -> None:
        self._unsubscribe()
        if self.server is not None:
            self.server.close()
            self.server = None
        if self.alerts is not None:
            self.alerts.stop()

    # -- what the rules watch ----------------------------------------------------------

    def venue_attached(self, venue: str, store: BreakerStore) -> None:
        """Watch a venue's breaker for OPEN (once per node-owned breaker store)."""
        breaker = store.breaker
        if id(breaker) in self._watched:
            return
        self._watched.add(id(breaker))
        breaker.add_listener(self._on_breaker)

    def raise_alert(
        self, kind: AlertKind, summary: str, *, venue: str | None = None, **details: str
    ) -> None:
        rule = self.rules.match(kind, venue)
        if rule is None or self.alerts is None:
            return
        self.alerts.publish(
            Alert(
                kind=kind,
                severity=rule.severity,
                node=self._node.config.node.name,
                summary=summary,
                ts_ns=self._node.clock.time_ns(),
                venue=venue,
                details=details,
            )
        )

    def kill_switch_engaged(self, *, flatten: bool) -> None:
        """From ``Node.kill_switch`` as it engages (every kill switch passes there,
        also when trading was already halted and no state change is published)."""
        self.raise_alert(
            AlertKind.KILL_SWITCH,
            "kill switch engaged" + (" with flatten" if flatten else ""),
            flatten=str(flatten).lower(),
        )

    def _on_breaker(self, transition: BreakerTransition) -> None:
        # On the breaker actor's thread: publish only queues.
        if transition.to_state is CircuitState.OPEN:
            self.raise_alert(
                AlertKind.BREAKER_OPEN,
                f"circuit breaker of {transition.circuit} OPEN: {transition.reason}",
                venue=transition.circuit,
                cause=transition.cause.name,
            )

    def _on_supervision(self, event: object) -> None:
        if not isinstance(event, SupervisionEvent):
            return
        root = f"/{self._node.config.node.name}"
        if event.kind is SupervisionEventKind.ESCALATED or (
            event.kind is SupervisionEventKind.FAILED and event.path == root
        ):
            self.raise_alert(
                AlertKind.ESCALATION,
                str(event),
                path=event.path,
                event=event.kind.value,
            )

    def on_event(self, message: Any, now_ns: int) -> None:
        """An OMS event, on the observer actor's thread."""
        if isinstance(message, Routed):
            order = message.order
            self.latency.decision_to_venue.labels(order.venue).observe(
                max(0, now_ns - order.ts_ns) / 1e9
            )
        elif isinstance(message, OrderFilled):
            if message.ts_ns:
                self.latency.fill_to_strategy.labels(message.venue).observe(
                    max(0, now_ns - message.ts_ns) / 1e9
                )
        elif isinstance(message, OrderDenied):
            self.latency.denials.labels(message.code.value).inc()
        elif isinstance(message, OrderRejected):
            self.raise_alert(
                AlertKind.ORDER_REJECTED,
                f"order {message.client_order_id} rejected by {message.venue}: "
                f"{message.code} {message.reason}",
                venue=message.venue,
                client_order_id=message.client_order_id,
                code=message.code,
            )
        elif isinstance(message, PositionDrift):
            self.raise_alert(
                AlertKind.DRIFT,
                f"position drift on {message.venue} {message.asset}: our fills "
                f"{message.our_change}, the venue {message.venue_change}",
                venue=message.venue,
                asset=message.asset,
            )
        elif isinstance(message, TradingStateChanged) and message.reason.startswith(
            # The risk engine's loss-limit reasons (``RiskEngine._loss_breach``).
            ("daily PnL", "drawdown")
        ):
            self.raise_alert(
                AlertKind.DAILY_LOSS,
                f"loss limit reached, trading {message.state.value}: {message.reason}",
            )


class ObserverActor(Actor):
    """Subscribed to every OMS event; hands each to ``Observability.on_event``."""

    def __init__(self, node: Node, observability: Observability) -> None:
        self._node = node
        self._observability = observability

    def on_start(self) -> None:
        self._node.oms.tell(Subscribe(self.context.self))

    def receive(self, message: Any) -> Any:
        try:
            self._observability.on_event(message, self.context.now_ns())
        except Exception:
            # Watching must never cost the node: a restart loop here could
            # exhaust the root's restart intensity and stop trading.
            logger.exception("observer: %s not observed", type(message).__name__)
        return None

    def on_stop(self) -> None:
        if self.context.is_stopping:
            self._node.oms.tell(Unsubscribe(self.context.self))

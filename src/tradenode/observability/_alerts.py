"""Alerts: what the rules match, delivered to the log and to webhooks off the trading path.

``AlertDispatcher.publish`` never blocks: it logs the alert and puts it on
a bounded queue (a full queue drops it and counts the drop). One daemon
thread per dispatcher posts each alert as JSON to every webhook, retrying
with exponential backoff; a webhook that is down or never answers delays
only that thread.

The dispatcher keeps the most recent alerts (``AlertsConfig.history``) with
where their delivery stands (:class:`AlertDelivery`): the control API's
``GET /v1/alerts``, ``tradenode ctl alerts`` and the dashboard read them
with :meth:`AlertDispatcher.recent`.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from ._settings import AlertKind, AlertRuleConfig, AlertsConfig, WebhookConfig

if TYPE_CHECKING:
    import httpx

__all__ = ["Alert", "AlertDelivery", "AlertDispatcher", "AlertRules", "DeliveryState"]

logger = logging.getLogger("tradenode.alerts")


@dataclass(frozen=True, slots=True)
class Alert:
    kind: AlertKind
    severity: str
    node: str
    summary: str
    ts_ns: int
    venue: str | None = None
    details: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        plain = asdict(self)
        plain["kind"] = self.kind.value
        return plain


class AlertRules:
    """Which configured rule (if any) an event of ``kind`` at ``venue`` matches."""

    def __init__(self, rules: tuple[AlertRuleConfig, ...]) -> None:
        self._rules = rules

    def match(self, kind: AlertKind, venue: str | None = None) -> AlertRuleConfig | None:
        for rule in self._rules:
            if rule.kind is kind and (rule.venue is None or venue is None or rule.venue == venue):
                return rule
        return None


class DeliveryState(enum.Enum):
    RUNNING = "running"
    STOPPED = "stopped"


class AlertDelivery(enum.Enum):
    """Where one alert's delivery stands (every alert is in the log first)."""

    LOGGED = "logged"
    """No webhook is configured: the log is its only destination."""
    QUEUED = "queued"
    """Waiting for (or in) delivery to the webhooks."""
    DELIVERED = "delivered"
    """Every webhook answered 2xx."""
    FAILED = "failed"
    """At least one webhook was given up after its attempts."""
    DROPPED = "dropped"
    """The queue was full: never sent to a webhook."""
    ABANDONED = "abandoned"
    """The dispatcher stopped before it was delivered."""


@dataclass(slots=True)
class _Entry:
    """One alert in the history and its delivery (mutated under the dispatcher's lock)."""

    number: int
    alert: Alert
    delivery: AlertDelivery
    delivered: int = 0
    failed: int = 0

    def to_json(self) -> dict[str, object]:
        alert = self.alert
        return {
            "id": self.number,
            "kind": alert.kind.value,
            "severity": alert.severity,
            "summary": alert.summary,
            "venue": alert.venue,
            "node": alert.node,
            "ts_ns": alert.ts_ns,
            "at": time.strftime("%H:%M:%S", time.gmtime(alert.ts_ns / 1e9)),
            "delivery": self.delivery.value,
            "webhooks": {"delivered": self.delivered, "failed": self.failed},
            "details": dict(alert.details),
        }


_STOP = object()


class AlertDispatcher:
    """A bounded queue of alerts and the thread that posts them to the webhooks."""

    def __init__(
        self,
        config: AlertsConfig,
        *,
        seed: int = 0,
        transport: httpx.BaseTransport | None = None,
        on_delivered: Callable[[Alert, str], None] | None = None,
    ) -> None:
        self._config = config
        self._queue: queue.Queue[object] = queue.Queue(maxsize=config.queue_size)
        self._stop = threading.Event()
        self._rng = random.Random(f"{seed}:alerts")
        self._transport = transport
        self._on_delivered = on_delivered
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._unfinished = 0
        """Alerts queued or being delivered (``wait_idle`` waits for none)."""
        self.published = 0
        self.dropped = 0
        """Alerts refused because the queue was full (each one logged at publish)."""
        self.delivered = 0
        self.failed = 0
        """Deliveries given up after ``max_attempts`` (one per alert and webhook)."""
        self.state = DeliveryState.RUNNING
        self._history: deque[_Entry] = deque(maxlen=config.history)
        self._numbers = 0
        self._client_errors: tuple[type[Exception], ...] = ()
        self._thread = threading.Thread(target=self._run, name="tradenode-alerts", daemon=True)
        self._thread.start()

    def publish(self, alert: Alert) -> bool:
        """Log the alert and queue it for the webhooks; False (counted) if the queue is full."""
        logger.warning(
            "ALERT %s [%s]: %s",
            alert.kind.value,
            alert.severity,
            alert.summary,
            extra={"venue": alert.venue},
        )
        with self._lock:
            self.published += 1
            self._numbers += 1
            webhooks = bool(self._config.webhooks)
            entry = _Entry(
                self._numbers, alert, AlertDelivery.QUEUED if webhooks else AlertDelivery.LOGGED
            )
            self._history.append(entry)
        if not webhooks:
            return True
        try:
            with self._lock:
                self._queue.put_nowait(entry)
                self._unfinished += 1
        except queue.Full:
            with self._lock:
                self.dropped += 1
                entry.delivery = AlertDelivery.DROPPED
            logger.error("alert queue full (%d): alert %s dropped", self._queue.maxsize, alert.kind)
            return False
        return True

    def recent(self, limit: int | None = None) -> list[dict[str, object]]:
        """The most recent alerts, newest first, each with its delivery state (JSON-ready)."""
        with self._lock:
            entries = list(reversed(self._history))
            return [entry.to_json() for entry in entries[:limit]]

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every queued alert has been delivered or given up (False on timeout).

        For operators and tests, never for trading code."""
        with self._idle:
            return self._idle.wait_for(lambda: self._unfinished == 0, timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop delivering; alerts still queued are abandoned (they are in the log)."""
        self._stop.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(_STOP)
        self._thread.join(timeout)
        self.state = DeliveryState.STOPPED
        with self._lock:
            for entry in self._history:
                if entry.delivery is AlertDelivery.QUEUED:
                    entry.delivery = AlertDelivery.ABANDONED

    def _run(self) -> None:
        # Imported on the delivery thread: core tradenode imports no network library.
        import httpx  # noqa: PLC0415

        self._client_errors = (httpx.HTTPError, httpx.InvalidURL)
        with httpx.Client(transport=self._transport) as client:
            while not self._stop.is_set():
                item = self._queue.get()
                if item is _STOP or not isinstance(item, _Entry):
                    continue
                body = json.dumps(item.alert.to_json(), default=str).encode()
                try:
                    for hook in self._config.webhooks:
                        ok = self._deliver(client, hook, item.alert, body)
                        with self._lock:
                            if ok:
                                item.delivered += 1
                            elif not self._stop.is_set():
                                item.failed += 1
                finally:
                    with self._idle:
                        if item.failed:
                            item.delivery = AlertDelivery.FAILED
                        elif item.delivered == len(self._config.webhooks):
                            item.delivery = AlertDelivery.DELIVERED
                        self._unfinished -= 1
                        self._idle.notify_all()

    def _deliver(
        self, client: httpx.Client, hook: WebhookConfig, alert: Alert, body: bytes
    ) -> bool:
        """Post ``body`` to ``hook`` until it answers 2xx (True) or is given up (False)."""
        headers = {"content-type": "application/json"}
        headers.update({k: v.get_secret_value() for k, v in hook.headers.items()})
        delay = hook.backoff_min
        client_errors = self._client_errors
        for attempt in range(1, hook.max_attempts + 1):
            if self._stop.is_set():
                return False
            try:
                response = client.post(
                    hook.url.get_secret_value(), content=body, headers=headers, timeout=hook.timeout
                )
                if response.status_code < 300:
                    with self._lock:
                        self.delivered += 1
                    if self._on_delivered is not None:
                        self._on_delivered(alert, str(response.status_code))
                    return True
                problem = f"HTTP {response.status_code}"
            except client_errors as exc:
                # Never the URL: it may hold a token.
                problem = type(exc).__name__
            logger.warning(
                "alert %s: webhook attempt %d/%d failed (%s)",
                alert.kind.value,
                attempt,
                hook.max_attempts,
                problem,
            )
            if attempt < hook.max_attempts:
                jitter = 1 + self._rng.uniform(-0.2, 0.2)
                # Waits on the stop event, so stopping the node never waits out a backoff.
                if self._stop.wait(min(delay * jitter, hook.backoff_max)):
                    return False
                delay = min(delay * 2, hook.backoff_max)
        with self._lock:
            self.failed += 1
        logger.error("alert %s: webhook gave up after %d attempt(s)", alert.kind.value, attempt)
        return False

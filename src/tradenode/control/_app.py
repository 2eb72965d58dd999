"""The control API: what an operator reads and does to a running node, over HTTP + JSON.

Reads: ``GET /v1/status``, ``/v1/tree``, ``/v1/orders?venue=&strategy=&state=``,
``/v1/fills``, ``/v1/positions``, ``/v1/pnl``, ``/v1/breakers``, ``/v1/risk``,
``/v1/approvals``, ``/v1/parents``, ``/v1/audit`` (this process's actions),
``/v1/alerts?limit=`` (the alert dispatcher's recent alerts, newest first, with
their delivery state),
``/metrics`` (Prometheus, when ``metrics:`` is configured).
Actions (``Authorization: Bearer <token>``; missing: 401, wrong: 403, nothing
changed): ``POST /v1/kill-switch``, ``/v1/trading-state`` (ACTIVE ends an
EMERGENCY: the node's resume), ``/v1/execution-mode``, ``/v1/venues`` (a YAML
snippet), ``DELETE /v1/venues/{name}``, ``POST /v1/strategies``, ``DELETE
/v1/strategies/{id}``, ``POST /v1/dlq/reprocess``, ``/v1/approvals/{id}/approve``,
``/v1/approvals/{id}/reject``, ``/v1/journal/snapshot``.

The web dashboard (``/``, ``/dashboard``, its event stream ``/v1/events`` and
``/v1/snapshot``) is :mod:`._dashboard`'s; its buttons call the actions above.

Every authorised action is journaled as an ``AUDIT`` record (who: the token's
name, never the token; what; when, by the node's clock; the result) and logged.
Every refusal is ``{"error": <code>, "message": <text>}`` with a 4xx status and
changes nothing. Answers pass through :class:`Redactor`: no secret the node
knows of leaves in one.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import yaml
from prometheus_client.exposition import choose_encoder
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import tradenode._config as node_config
from tradenode._execution_config import ExecutionMode

from .._exceptions import ConfigError
from .._status import tree_dict
from ..actors._breaker import GetBreakerStats, ReprocessParked
from ..actors._control import (
    GetFills,
    GetOrders,
    GetPositions,
    GetRiskStatus,
    RecordAudit,
    SetTradingState,
    TakeSnapshot,
)
from ..messages._enums import OrderStatus, TradingState
from ._config import ControlConfig
from ._dashboard import Dashboard
from ._plain import Redactor, plain

if TYPE_CHECKING:
    from .._node import Node

__all__ = ["ControlApp", "ControlRefused"]

logger = logging.getLogger("tradenode.control")

_ASK_TIMEOUT = 10.0
_AUDIT_KEPT = 1000


class ControlRefused(Exception):
    """A request the API refuses: its HTTP status, error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One authorised action, as journaled (``seq`` None: the node has no journal)."""

    who: str
    action: str
    detail: str
    result: str
    ts_ns: int
    seq: int | None


Handler = Callable[[dict[str, Any], dict[str, str], str], tuple[int, Any]]


class ControlApp:
    """The ASGI app of one node's control API (``.asgi``) and its counters."""

    def __init__(self, node: Node, config: ControlConfig) -> None:
        self.node = node
        self.config = config
        self.redactor = Redactor()
        self.redactor.learn(node.config)
        self._lock = threading.Lock()
        self.refused: dict[str, int] = {}
        """Refused requests by error code (``unauthorized``, ``malformed_json``, ...)."""
        self.audit: deque[AuditRecord] = deque(maxlen=_AUDIT_KEPT)
        reads: list[tuple[str, Callable[[Request], Any]]] = [
            ("/v1/status", self._status),
            ("/v1/tree", self._tree),
            ("/v1/orders", self._orders),
            ("/v1/fills", self._fills),
            ("/v1/positions", self._positions),
            ("/v1/pnl", self._pnl),
            ("/v1/breakers", self._breakers),
            ("/v1/risk", self._risk),
            ("/v1/approvals", self._approvals),
            ("/v1/parents", self._parents),
            ("/v1/audit", self._audit_list),
            ("/v1/alerts", self._alerts),
        ]
        actions: list[tuple[str, str, str, Handler]] = [
            ("POST", "/v1/kill-switch", "kill-switch", self._kill_switch),
            ("POST", "/v1/trading-state", "trading-state", self._trading_state),
            ("POST", "/v1/execution-mode", "execution-mode", self._execution_mode),
            ("POST", "/v1/venues", "add-venue", self._add_venue),
            ("DELETE", "/v1/venues/{name}", "remove-venue", self._remove_venue),
            ("POST", "/v1/strategies", "add-strategy", self._add_strategy),
            ("DELETE", "/v1/strategies/{name}", "remove-strategy", self._remove_strategy),
            ("POST", "/v1/dlq/reprocess", "dlq-reprocess", self._dlq_reprocess),
            ("POST", "/v1/approvals/{name}/approve", "approve", self._approve),
            ("POST", "/v1/approvals/{name}/reject", "reject", self._reject),
            ("POST", "/v1/journal/snapshot", "journal-snapshot", self._snapshot),
        ]
        routes = self._metrics_routes()
        routes += [Route(path, self._read(fn), methods=["GET"]) for path, fn in reads]
        routes += [
            Route(path, self._action(name, fn), methods=[method])
            for method, path, name, fn in actions
        ]
        self.dashboard = Dashboard(self, read_refusal=self._read_refusal)
        routes += self.dashboard.routes()
        self.asgi = Starlette(routes=routes, exception_handlers={HTTPException: self._http_error})

    def close(self) -> None:
        """End the dashboard's event streams (before the server's graceful shutdown)."""
        self.dashboard.close()

    # -- plumbing -------------------------------------------------------------------

    def _read_refusal(self, request: Request) -> Response | None:
        """None when ``request`` may read; else its refusal (off loopback reads need a token)."""
        try:
            if self.config.reads_need_token:
                self._authorise(request)
        except ControlRefused as refused:
            return self._refuse(refused)
        return None

    def _answer(self, status: int, data: Any) -> Response:
        return Response(
            self.redactor.dumps(data), status_code=status, media_type="application/json"
        )

    def _refuse(self, refused: ControlRefused) -> Response:
        with self._lock:
            self.refused[refused.code] = self.refused.get(refused.code, 0) + 1
        logger.warning("control API refused a request: %s: %s", refused.code, refused.message)
        return self._answer(
            refused.status,
            {"error": refused.code, "message": self.redactor.scrub(refused.message)},
        )

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
        message = f"{request.method} {request.url.path}: {exc.detail}"
        return self._refuse(ControlRefused(exc.status_code, code, message))

    def _authorise(self, request: Request) -> str:
        """The token's name; 401 without a bearer token, 403 with a wrong one."""
        header = request.headers.get("authorization")
        if header is None:
            raise ControlRefused(401, "unauthorized", "this needs Authorization: Bearer <token>")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise ControlRefused(401, "unauthorized", "this needs Authorization: Bearer <token>")
        given = presented.strip().encode()
        found = None
        for name, secret in self.config.tokens.items():
            # Every token compared, in constant time: no early exit to time.
            if hmac.compare_digest(given, secret.get_secret_value().encode()):
                found = name
        if found is None:
            raise ControlRefused(403, "forbidden", "the token is not one of control.tokens")
        return found

    async def _body(self, request: Request) -> dict[str, Any]:
        limit = self.config.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ControlRefused(413, "body_too_large", f"the body exceeds {limit} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ControlRefused(413, "body_too_large", f"the body exceeds {limit} bytes")
            chunks.append(chunk)
        raw = b"".join(chunks)
        if not raw.strip():
            return {}
        kind = request.headers.get("content-type", "application/json").split(";")[0].strip()
        if kind in ("application/yaml", "application/x-yaml", "text/yaml", "text/plain"):
            try:
                return {"yaml": raw.decode("utf-8")}
            except UnicodeDecodeError:
                raise ControlRefused(400, "malformed_body", "the body is not UTF-8") from None
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ControlRefused(400, "malformed_json", f"the body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ControlRefused(
                400, "malformed_json", f"the body must be a JSON object, not {type(data).__name__}"
            )
        return data

    def _read(self, fn: Callable[[Request], Any]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                if self.config.reads_need_token:
                    self._authorise(request)
                data = await anyio.to_thread.run_sync(fn, request)
            except ControlRefused as refused:
                return self._refuse(refused)
            except Exception as exc:  # an answer, never a dead server thread
                logger.exception("control API: %s failed", request.url.path)
                return self._refuse(
                    ControlRefused(
                        503, "unavailable", f"{request.url.path}: {type(exc).__name__}: {exc}"
                    )
                )
            return self._answer(200, data)

        return endpoint

    def _action(self, name: str, fn: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                who = self._authorise(request)
                body = await self._body(request)
            except ControlRefused as refused:
                return self._refuse(refused)
            params = {k: str(v) for k, v in request.path_params.items()}
            return await anyio.to_thread.run_sync(self._run_action, name, fn, body, params, who)

        return endpoint

    def _run_action(
        self, name: str, fn: Handler, body: dict[str, Any], params: dict[str, str], who: str
    ) -> Response:
        detail = self.redactor.dumps(_detail(body, params))
        try:
            status, data = fn(body, params, who)
        except ControlRefused as refused:
            self._journal(
                who, name, detail, f"refused {refused.status} {refused.code}: {refused.message}"
            )
            return self._refuse(refused)
        except Exception as exc:
            logger.exception("control API: %s by %s failed", name, who)
            self._journal(who, name, detail, f"error: {type(exc).__name__}: {exc}")
            return self._refuse(
                ControlRefused(500, "action_failed", f"{name} failed: {type(exc).__name__}: {exc}")
            )
        self._journal(who, name, detail, "ok: " + self.redactor.dumps(data))
        return self._answer(status, data)

    def _journal(self, who: str, action: str, detail: str, result: str) -> None:
        result = self.redactor.scrub(result)[:4096]
        detail = detail[:16384]
        try:
            seq = self.node.oms.ask(RecordAudit(who, action, detail, result), timeout=_ASK_TIMEOUT)
        except Exception:
            # The action has happened; its record is in the log below even so.
            logger.exception("audit: %s by %s could not be journaled", action, who)
            seq = None
        record = AuditRecord(who, action, detail, result, self.node.clock.time_ns(), seq)
        self.audit.append(record)
        logger.info("audit: %s by %s: %s (journal seq %s)", action, who, result[:200], seq)

    # -- reads ----------------------------------------------------------------------

    def _status(self, request: Request) -> Any:
        status = self.node.status()
        status["connections"] = {
            name: _redacted_settings(info) for name, info in status.get("connections", {}).items()
        }
        return status

    def _tree(self, request: Request) -> Any:
        tree = self.node.tree()
        return None if tree is None else tree_dict(tree)

    def _orders(self, request: Request) -> Any:
        venue = request.query_params.get("venue") or None
        strategy = request.query_params.get("strategy") or None
        wanted = request.query_params.get("state")
        status = None
        if wanted:
            try:
                status = OrderStatus(wanted.upper())
            except ValueError:
                raise ControlRefused(
                    400,
                    "bad_state",
                    f"state {wanted!r} is none of {', '.join(s.value for s in OrderStatus)}",
                ) from None
        views = self.node.oms.ask(
            GetOrders(venue=venue, strategy_id=strategy, status=status), _ASK_TIMEOUT
        )
        return [_order_row(view) for view in views]

    def _fills(self, request: Request) -> Any:
        strategy = request.query_params.get("strategy") or None
        venue = request.query_params.get("venue") or None
        fills = self.node.oms.ask(GetFills(strategy_id=strategy), _ASK_TIMEOUT)
        return [plain(f) for f in fills if venue is None or f.venue == venue]

    def _positions(self, request: Request) -> Any:
        venue = request.query_params.get("venue") or None
        return self.node.oms.ask(GetPositions(venue=venue), _ASK_TIMEOUT)

    def _pnl(self, request: Request) -> Any:
        positions = self.node.oms.ask(GetPositions(), _ASK_TIMEOUT)
        realized = sum((p.realized_pnl for p in positions), Decimal(0))
        unrealized = sum((p.unrealized_pnl for p in positions), Decimal(0))
        return {
            "realized": realized,
            "unrealized": unrealized,
            "total": realized + unrealized,
            "by_position": [
                {
                    "venue": p.venue,
                    "symbol": p.symbol,
                    "realized": p.realized_pnl,
                    "unrealized": p.unrealized_pnl,
                }
                for p in positions
            ],
        }

    def _breakers(self, request: Request) -> Any:
        breakers = {}
        for entry in self.node.directory.venues():
            stats = entry.breaker.ask(GetBreakerStats(), _ASK_TIMEOUT)
            breakers[entry.name] = {
                "state": stats.circuit_state,
                "failures": stats.failure_count,
                "consecutive_failures": stats.consecutive_failures,
                "dlq": stats.dlq_size,
                "in_flight": stats.in_flight,
                "rate_limited_waiting": stats.rate_limited_waiting,
            }
        return breakers

    def _risk(self, request: Request) -> Any:
        return self.node.risk.ask(GetRiskStatus(), _ASK_TIMEOUT)

    def _approvals(self, request: Request) -> Any:
        return [pending.describe() for pending in self.node.pending_approvals()]

    def _parents(self, request: Request) -> Any:
        working = request.query_params.get("working") in ("1", "true", "yes")
        return [
            {
                "parent_id": view.order.parent_id,
                "strategy": view.order.strategy_id,
                "venue": view.order.venue,
                "symbol": view.order.symbol,
                "side": view.order.side,
                "quantity": view.order.quantity,
                "algorithm": type(view.order.algorithm).__name__,
                "state": view.state,
                "filled": view.filled,
                "avg_price": view.avg_price,
                "children": list(view.child_ids),
            }
            for view in self.node.parents(working_only=working)
        ]

    def _audit_list(self, request: Request) -> Any:
        return list(self.audit)

    def _alerts(self, request: Request) -> Any:
        raw = request.query_params.get("limit")
        if raw is not None and not (raw.isdigit() and int(raw) > 0):
            raise ControlRefused(400, "bad_limit", f"limit must be a positive integer, not {raw!r}")
        return self.node.observability.recent_alerts(None if raw is None else int(raw))

    def _metrics_routes(self) -> list[Route]:
        """``GET /metrics`` when ``metrics:`` is configured: the node's registry (the
        metrics port's own), read as reads are (a token off loopback)."""
        if self.node.observability.metrics_config is None:
            return []
        return [Route("/metrics", self._metrics, methods=["GET"])]

    async def _metrics(self, request: Request) -> Response:
        try:
            if self.config.reads_need_token:
                self._authorise(request)
            encoder, content_type = choose_encoder(request.headers.get("accept", ""))
            # A scrape asks the actors with blocking asks: never on the event loop.
            body = await anyio.to_thread.run_sync(encoder, self.node.observability.registry)
        except ControlRefused as refused:
            return self._refuse(refused)
        except Exception as exc:  # an answer, never a dead server thread
            logger.exception("control API: /metrics failed")
            return self._refuse(
                ControlRefused(503, "unavailable", f"/metrics: {type(exc).__name__}: {exc}")
            )
        return Response(body, headers={"Content-Type": content_type})

    # -- actions --------------------------------------------------------------------

    def _kill_switch(self, body: dict[str, Any], params: dict[str, str], who: str) -> Any:
        flatten = _flag(body, "flatten")
        report = self.node.kill_switch(flatten=flatten)
        return 200, report

    def _trading_state(self, body: dict[str, Any], params: dict[str, str], who: str) -> Any:
        text = body.get("state")
        try:
            state = TradingState(text)
        except ValueError:
            raise ControlRefused(
                422,
                "invalid_state",
                f"state must be one of {', '.join(s.value for s in TradingState)}, got {text!r}",
            ) from None
        reason = str(body.get("reason") or f"set by {who} through the control API")
        if state is TradingState.ACTIVE and self.node.execution_mode() is ExecutionMode.EMERGENCY:
            # Trading again after an emergency is the node's resume: the mode goes too.
            mode = self.node.resume(who)
            return 200, {"state": TradingState.ACTIVE, "execution_mode": mode}
        now = self.node.risk.ask(SetTradingState(state, reason), _ASK_TIMEOUT)
        return 200, {"state": now}

    def _execution_mode(self, body: dict[str, Any], params: dict[str, str], who: str) -> Any:
        text, strategy_id = body.get("mode"), body.get("strategy")
        if strategy_id is not None and not isinstance(strategy_id, str):
            raise ControlRefused(422, "invalid_argument", "strategy must be a strategy id")
        try:
            mode = None if text is None and strategy_id else ExecutionMode(text)
        except ValueError:
            raise ControlRefused(
                422,
                "invalid_mode",
                f"mode must be one of {', '.join(m.value for m in ExecutionMode)}, got {text!r}",
            ) from None
        try:
            report = self.node.set_execution_mode(mode, who=who, strategy_id=strategy_id)
        except ValueError as exc:
            raise ControlRefused(409, "mode_refused", str(exc)) from None
        answer: dict[str, Any] = {"mode": self.node.execution_mode(strategy_id)}
        if strategy_id is not None:
            answer["strategy"] = strategy_id
        if report is not None:
            answer["kill_switch"] = report
        return 200, answer

    def _add_venue(self, body: dict[str, Any], params: dict[str, str], who: str) -> Any:
        snippet = body.get("yaml")
        if not isinstance(snippet, str):
            raise ControlRefused(
                422, "invalid_venue", 'give the venue as a YAML snippet: {"yaml": "..."}'
            )
        venue = _venue_from_snippet(snippet)
        if self.node.directory.venue(venue.name) is not None:
            raise ControlRefused(409, "venue_exists", f"venue {venue.name} is connected already")
        self.redactor.learn(venue)
        self.node.add_venue(venue)
        return 201, {"venue": venue.name, "kind": venue.kind}

    def _remove_venue(self, body: dict[str, Any], params: dict[str, str], who: str) -> Any:
        name = params["name"]
        if self.node.directory.venue(name) is None:
            raise ControlRefused(404, "unknown_venue", f"no venue {name} is connected")
        self.node.remove_venue(name)
        return 200, {"venue": name, "removed": True}

    def _add_strategy(self, body: dict[str, Any], params: dict[str, str], who: str) -> Any:
        raw = body
        if "yaml" in body:
            raw = _yaml_mapping(body["yaml"], "strategy")
        try:
            strategy = node_config.StrategyConfig.model_validate(raw)
        except ConfigError as exc:
            raise ControlRefused(422, "invalid_strategy", str(exc)) from None
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(str(part) for part in first["loc"]) or "<strategy>"
            raise ControlRefused(422, "invalid_strategy", f"{key}: {first['msg']}") from None
        venue = strategy.venue
        if venue != node_config.AUTO_VENUE and self.node.directory.venue(venue) is None:
            raise ControlRefused(422, "invalid_strategy", f"venue: no venue {venue} is connected")
        if self.node.system.lookup(self.node.directory.path("core", "strategies", strategy.id)):
            raise ControlRefused(409, "strategy_exists", f"strategy {strategy.id} runs already")
        self.node.add_strategy_from_config(strategy)
        return 201, {"strategy": strategy.id, "venue": venue}

    def _remove_strategy(self, body: dict[str, Any], params: dict[str, str], who: str) -> Any:
        name = params["name"]
        if not self.node.remove_strategy(name):
            raise ControlRefused(404, "unknown_strategy", f"no strategy {name} runs")
        return 200, {"strategy": name, "removed": True}

    def _dlq_reprocess(self, body: dict[str, Any], params: dict[str, str], who: str) -> Any:
        name = body.get("venue")
        entry = self.node.directory.venue(name) if isinstance(name, str) else None
        if entry is None:
            raise ControlRefused(404, "unknown_venue", f"no venue {name!r} is connected")
        before = entry.breaker.ask(GetBreakerStats(), _ASK_TIMEOUT).dlq_size
        entry.breaker.tell(ReprocessParked())
        after = entry.breaker.ask(GetBreakerStats(), _ASK_TIMEOUT).dlq_size
        return 200, {"venue": name, "reprocessed": before, "dlq_after": after}

    def _approve(self, body: dict[str, Any], params: dict[str, str], who: str) -> Any:
        approval_id = params["name"]
        if not self.node.approve(approval_id, who):
            raise ControlRefused(404, "not_pending", f"{approval_id} is not pending approval")
        return 200, {"approval": approval_id, "approved": True}

    def _reject(self, body: dict[str, Any], params: dict[str, str], who: str) -> Any:
        approval_id = params["name"]
        reason = str(body.get("reason") or f"rejected by {who}")
        if not self.node.reject(approval_id, who, reason):
            raise ControlRefused(404, "not_pending", f"{approval_id} is not pending approval")
        return 200, {"approval": approval_id, "rejected": True}

    def _snapshot(self, body: dict[str, Any], params: dict[str, str], who: str) -> Any:
        seq = self.node.oms.ask(TakeSnapshot(), _ASK_TIMEOUT)
        if seq is None:
            raise ControlRefused(409, "no_journal", "this node has no journal to snapshot")
        return 200, {"snapshot_seq": seq}


def _order_row(view: Any) -> dict[str, Any]:
    order = view.order
    return {
        "client_order_id": order.client_order_id,
        "strategy": order.strategy_id,
        "venue": order.venue,
        "symbol": order.symbol,
        "side": order.side,
        "type": order.order_type,
        "quantity": order.quantity,
        "price": order.price,
        "status": view.status,
        "filled": view.filled_quantity,
        "avg_price": view.avg_fill_price,
        "venue_order_id": view.venue_order_id,
        "reason": view.reason,
    }


def _detail(body: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
    """An action's arguments for its audit record: a YAML snippet as the mapping it
    holds, with every secret-named key's value redacted (never the snippet's text,
    which holds a venue's secrets before anything has learned them)."""
    detail: dict[str, Any] = {**params, **body}
    snippet = detail.get("yaml")
    if isinstance(snippet, str):
        try:
            parsed = yaml.safe_load(snippet)
        except yaml.YAMLError:
            parsed = None
        detail["yaml"] = (
            plain(parsed) if isinstance(parsed, dict) else f"<not a mapping: {len(snippet)} chars>"
        )
    return {key: plain({key: value})[key] for key, value in detail.items()}


def _flag(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise ControlRefused(422, "invalid_argument", f"{key} must be true or false")
    return value


def _yaml_mapping(snippet: object, what: str) -> dict[str, Any]:
    if not isinstance(snippet, str):
        raise ControlRefused(422, f"invalid_{what}", f"the {what} must be a YAML snippet (text)")
    try:
        raw = yaml.safe_load(snippet)
    except yaml.YAMLError as exc:
        # Not PyYAML's own text: it quotes the offending line, which may hold a secret.
        detail = str(node_config._yaml_error(exc, f"{what} snippet"))
        raise ControlRefused(422, f"invalid_{what}", detail) from None
    if not isinstance(raw, dict):
        raise ControlRefused(
            422,
            f"invalid_{what}",
            f"the {what} snippet must be a mapping, not {type(raw).__name__}",
        )
    return raw


def _venue_from_snippet(snippet: str) -> node_config.VenueConfig:
    """One venue from YAML, validated as a config file's ``venues:`` entry is (``${ENV}``
    interpolated, errors naming the key, no secret in them)."""
    raw = _yaml_mapping(snippet, "venue")
    document = yaml.safe_dump({"venues": [raw]}, sort_keys=False)
    try:
        config = node_config.parse_config(document, source="venue snippet")
    except ConfigError as exc:
        raise ControlRefused(422, "invalid_venue", str(exc)) from None
    return config.venues[0]


def _redacted_settings(info: Any) -> Any:
    return plain(info)

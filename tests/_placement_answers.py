"""Drive the Binance session reader's answering object (``_PlacementAnswer``) without
a session or a venue: one recorder plays the breaker, the OMS and the actor's own
mailbox (``test_binance_fast_reply``, ``test_binance_fast_rest``)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from tradenode.actors import BrokerRequest

# The reader's answering object is the actor's internal, driven here directly.
from tradenode.brokers.binance._actor import _PlacementAnswer

# A venue answer as the session hands it over.
from tradenode.brokers.binance._session import RestResult
from tradenode.messages import OrderType, Side, SubmitOrder

BROKER = "binance"


class Mailbox:
    """One role's address; every tell lands in the shared ``log`` as (role, message)."""

    def __init__(self, role: str, log: list[tuple[str, Any]]) -> None:
        self.role = role
        self.log = log

    def tell(self, message: Any) -> None:
        self.log.append((self.role, message))


def answer_placement(
    body: dict[str, Any],
    *,
    client_order_id: str,
    quantity: Decimal,
    seq: int,
    sent_at: float = 0.0,
    headers: Mapping[str, str] | None = None,
    rate_limits: Mapping[str, tuple[float, float]] | None = None,
    tells_oms: bool = True,
    log: list[tuple[str, Any]] | None = None,
) -> tuple[list[tuple[str, Any]], BrokerRequest]:
    """A BUY MARKET placement's venue answer ``body`` handed to ``_PlacementAnswer``
    (request ``seq``, sent at ``sent_at``); what each role was told, in order (appended
    to ``log`` when one is given)."""
    log = [] if log is None else log
    command = SubmitOrder(
        client_order_id=client_order_id,
        strategy_id="s",
        venue=BROKER,
        symbol="BTCUSDT",
        side=Side.BUY,
        order_type=OrderType.MARKET,
        quantity=quantity,
    )
    request = BrokerRequest(seq, command, Mailbox("breaker", log))  # type: ignore[arg-type]
    answer = _PlacementAnswer(
        Mailbox("actor", log),  # type: ignore[arg-type]
        request,
        BROKER,
        Mailbox("oms", log),  # type: ignore[arg-type]
        {request.seq: (request, sent_at)},
        rate_limits or {},
        lambda: 1,
        tells_oms=tells_oms,
    )
    answer.answer(RestResult(200, body, dict(headers or {}), 0.0))
    return log, request

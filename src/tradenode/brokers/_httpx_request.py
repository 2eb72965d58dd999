"""One REST request of an httpx-based session, its transport failures as ours.

The mapping the Alpaca and Coinbase sessions share: a connect that failed or
timed out sent nothing (the adapter's own ``NotSent``, so the breaker may
send again at once); a timeout after that, or any other transport failure,
leaves the outcome unknown (``BrokerTimeoutError``, ``BrokerConnectionError``:
the breaker looks the order up first). The request runs as one of the
session's :class:`~._outside_calls.OutsideCalls`: if the session ends first it
is cancelled, and that too is an unknown outcome.
"""

from __future__ import annotations

from typing import Any

import httpx

from .._exceptions import BrokerConnectionError, BrokerTimeoutError
from ._outside_calls import OutsideCalls

__all__ = ["send_request"]


async def send_request(
    client: httpx.AsyncClient,
    outside: OutsideCalls,
    method: str,
    path: str,
    *,
    broker: str,
    timeout_s: float,
    not_sent: type[BrokerConnectionError],
    **options: Any,
) -> httpx.Response:
    """``client.request(method, path, **options)``, or the error saying what is known."""
    where = f"{method} {path}"
    response: httpx.Response | None = None
    with outside.running():
        try:
            response = await client.request(method, path, **options)
        except httpx.TimeoutException as exc:
            if isinstance(exc, httpx.ConnectTimeout):
                raise not_sent(f"{where}: cannot connect", broker=broker) from exc
            raise BrokerTimeoutError(
                f"{where}: no answer within {timeout_s:g} s", broker=broker
            ) from exc
        except httpx.ConnectError as exc:
            raise not_sent(f"{where}: cannot connect", broker=broker) from exc
        except httpx.HTTPError as exc:
            raise BrokerConnectionError(f"{where}: {type(exc).__name__}", broker=broker) from exc
    if response is None:
        raise BrokerConnectionError(
            f"{where}: the session closed during the request (outcome unknown)", broker=broker
        )
    return response

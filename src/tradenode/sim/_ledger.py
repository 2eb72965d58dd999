"""Spot balances: per asset, what is free to use and what open orders hold.

Orders lock what they might spend when they are accepted, so an order that
fills later can never find its money gone; the simulator moves amounts
between the two columns and the ledger only keeps the arithmetic in one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from tradenode.sim._events import SimBalance
from tradenode.sim._numbers import ZERO

__all__ = ["Ledger"]


class Ledger:
    def __init__(self, initial: Mapping[str, Decimal], assets: Iterable[str]) -> None:
        self._free: dict[str, Decimal] = dict(initial)
        for asset in assets:
            self._free.setdefault(asset, ZERO)
        self._locked: dict[str, Decimal] = dict.fromkeys(self._free, ZERO)

    def free(self, asset: str) -> Decimal:
        return self._free[asset]

    def locked(self, asset: str) -> Decimal:
        return self._locked[asset]

    def lock(self, asset: str, amount: Decimal) -> None:
        self._free[asset] -= amount
        self._locked[asset] += amount

    def unlock(self, asset: str, amount: Decimal) -> None:
        self._locked[asset] -= amount
        self._free[asset] += amount

    def spend_locked(self, asset: str, amount: Decimal) -> None:
        self._locked[asset] -= amount

    def credit(self, asset: str, amount: Decimal) -> None:
        self._free[asset] += amount

    def balances(self) -> dict[str, SimBalance]:
        return {
            asset: SimBalance(free=free, locked=self._locked[asset])
            for asset, free in self._free.items()
        }

    def to_plain(self) -> dict[str, Any]:
        return {
            asset: {"free": str(free), "locked": str(self._locked[asset])}
            for asset, free in self._free.items()
        }

    @classmethod
    def from_plain(cls, plain: Mapping[str, Any], assets: Iterable[str]) -> Ledger:
        ledger = cls({}, assets)
        for asset, amounts in plain.items():
            ledger._free[asset] = Decimal(amounts["free"])
            ledger._locked[asset] = Decimal(amounts["locked"])
        return ledger

"""The conformance suite for the generic CCXT adapter (issue #17), on two local venues.

ccxt's own ``binance`` and ``okx`` classes (ccxt.pro: orders and trades watched
over the venues' WebSockets) drive the project's local Binance and OKX venues,
pointed there through ccxt's URL overrides (``rest_url``/``ws_url``: every
leaf of ``urls['api']`` gets the venue's host, the paths stay Binance's and
OKX's own). The venues' books, faults and account are read exactly as for the
native adapters' conformance runs; only the node's symbols are ccxt's unified
ones (``BTC/USDT``). Execution ids are the native adapters' too
(``binance-BTCUSDT-<tradeId>``, ``okx-BTC-USDT-<tradeId>``). The out-of-process
campaign runs the Binance drill's venue in a process of its own with node
processes configured for ccxt (OKX has no campaign venue, for either adapter).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar

import pytest

from tradenode.messages import SubmitOrder
from tradenode.testing.campaign import BinanceCampaignVenue, CampaignVenue, VenueSettings
from tradenode.testing.conformance import ConformanceSuite, ConformanceVenue, Instrument
from tradenode.testing.venues import DEFAULT_API_KEY, DEFAULT_API_SECRET

from .test_conformance_binance import BinanceConformanceVenue
from .test_conformance_okx import OkxConformanceVenue

D = Decimal


class CcxtBinanceConformanceVenue(BinanceConformanceVenue):
    """The local Binance, traded through ccxt.pro's ``binance``."""

    _MARKETS: ClassVar[dict[str, str]] = {"BTC/USDT": "BTCUSDT", "ETH/USDT": "ETHUSDT"}

    def venue_config(self) -> Mapping[str, Any]:
        venue = self.venue
        return {
            "name": "binance",
            "kind": "ccxt",
            "ccxt": {
                "exchange": "binance",
                "api_key": DEFAULT_API_KEY,
                "secret": DEFAULT_API_SECRET,
                "rest_url": venue.rest_url,
                "ws_url": venue.stream_url,
                "symbols": list(self._MARKETS),
                # Spot only: exchangeInfo once, no margin or currency endpoints.
                "options": {
                    "fetchMarkets": {"types": ["spot"]},
                    "fetchCurrencies": False,
                    "fetchMargins": False,
                },
                "request_timeout": 5.0,
            },
        }

    def instrument(self) -> Instrument:
        return dataclasses.replace(super().instrument(), symbol="BTC/USDT", lot_size=D("0.0001"))

    def set_price(self, symbol: str, price: Decimal) -> None:
        super().set_price(self._MARKETS.get(symbol, symbol), price)

    def position(self, symbol: str) -> Decimal:
        return super().position(self._MARKETS.get(symbol, symbol))

    def place_directly(self, order: SubmitOrder) -> None:
        super().place_directly(dataclasses.replace(order, symbol=self._MARKETS[order.symbol]))

    def campaign_venue(self) -> CampaignVenue:
        return CcxtBinanceCampaignVenue()


class CcxtBinanceCampaignVenue(BinanceCampaignVenue):
    """The campaign's local Binance in a process of its own, traded by node processes
    through ccxt: the same venue, faults and books as the native adapter's drill;
    only the node's config (kind ``ccxt``, unified symbols) differs."""

    _UNIFIED: ClassVar[dict[str, str]] = {"BTCUSDT": "BTC/USDT", "ETHUSDT": "ETH/USDT"}

    @property
    def symbols(self) -> Mapping[str, str]:
        return {self._UNIFIED[symbol]: base for symbol, base in super().symbols.items()}

    def venue_config(self, settings: VenueSettings) -> dict[str, Any]:
        native = super().venue_config(settings)["binance"]
        return {
            "name": self.name,
            "kind": "ccxt",
            "ccxt": {
                "exchange": "binance",
                "api_key": native["api_key"],
                "secret": native["api_secret"],
                "rest_url": native["rest_url"],
                "ws_url": native["stream_url"],
                "symbols": list(self.symbols),
                "options": {
                    "fetchMarkets": {"types": ["spot"]},
                    "fetchCurrencies": False,
                    "fetchMargins": False,
                    # The drawn acceptance window, as the native adapter's recv_window_ms.
                    "recvWindow": settings.fields["recv_window_ms"],
                },
                "request_timeout": settings.fields["request_timeout"],
            },
        }


class CcxtOkxConformanceVenue(OkxConformanceVenue):
    """The local OKX, traded through ccxt.pro's ``okx`` (orders over REST)."""

    _MARKETS: ClassVar[dict[str, str]] = {"BTC/USDT": "BTC-USDT", "ETH/USDT": "ETH-USDT"}

    def __init__(self) -> None:
        super().__init__(ws_orders=False)

    def venue_config(self) -> Mapping[str, Any]:
        venue = self.venue
        return {
            "name": "okx",
            "kind": "ccxt",
            "ccxt": {
                "exchange": "okx",
                "api_key": venue.api_key,
                "secret": venue.secret,
                "password": venue.passphrase,
                "rest_url": venue.rest_url,
                "ws_url": venue.ws_public_url.removesuffix("/ws/v5/public"),
                "symbols": list(self._MARKETS),
                "options": {"fetchMarkets": {"types": ["spot"]}},
                "request_timeout": 1.0,
            },
        }

    def instrument(self) -> Instrument:
        return dataclasses.replace(super().instrument(), symbol="BTC/USDT")

    def set_price(self, symbol: str, price: Decimal) -> None:
        super().set_price(self._MARKETS.get(symbol, symbol), price)

    def position(self, symbol: str) -> Decimal:
        return super().position(self._MARKETS.get(symbol, symbol))

    def place_directly(self, order: SubmitOrder) -> None:
        super().place_directly(dataclasses.replace(order, symbol=self._MARKETS[order.symbol]))


class TestCcxtBinanceConformance(ConformanceSuite):
    @pytest.fixture
    def conformance_venue(self) -> ConformanceVenue:
        return CcxtBinanceConformanceVenue()


class TestCcxtOkxConformance(ConformanceSuite):
    @pytest.fixture
    def conformance_venue(self) -> ConformanceVenue:
        return CcxtOkxConformanceVenue()

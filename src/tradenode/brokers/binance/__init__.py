"""The Binance Spot adapter: a pure codec, a typed endpoint layer, a trio session, a broker actor.

Public API tiers (``tests/test_public_api.py`` pins them):

- **Node users** configure the venue: :data:`BINANCE` (the venue kind,
  registered under ``kind: binance``), :class:`BinanceSettings` (the
  ``binance:`` section), and read :class:`BinanceLink` (``Node.venues[name]``);
  :class:`GetMarketSnapshot` asks a running :class:`BinanceBroker` for a
  symbol's :class:`MarketSnapshot` (its :class:`DepthSnapshot` included); a
  broker built without a node takes :class:`BinanceEndpoints` (where the
  venue is).
- **Adapter authors and scripts** that talk to Binance with the same keys:
  the credentials (:class:`BinanceCredentials` for HMAC,
  :class:`Ed25519Credentials`, :data:`ApiCredentials` for either) and the
  two signing entry points, :func:`signed_query` (REST) and
  :func:`signed_ws_params` (WebSocket API); :func:`binance_capabilities`
  is what the adapter declares.

Everything else is private: the codec (``_signing``, ``_rules``,
``_codec``: no I/O), the endpoint layer (``_endpoints``), the session
(``_session``) and the actor's internals. Tests that exercise them import
them from those modules and say why.
"""

from ._actor import BinanceBroker, BinanceLink, GetMarketSnapshot, MarketSnapshot
from ._capabilities import binance_capabilities
from ._codec import DepthSnapshot
from ._factory import BINANCE
from ._session import BinanceEndpoints
from ._settings import BinanceSettings
from ._signing import (
    ApiCredentials,
    BinanceCredentials,
    Ed25519Credentials,
    signed_query,
    signed_ws_params,
)

__all__ = [
    "BINANCE",
    "ApiCredentials",
    "BinanceBroker",
    "BinanceCredentials",
    "BinanceEndpoints",
    "BinanceLink",
    "BinanceSettings",
    "DepthSnapshot",
    "Ed25519Credentials",
    "GetMarketSnapshot",
    "MarketSnapshot",
    "binance_capabilities",
    "signed_query",
    "signed_ws_params",
]

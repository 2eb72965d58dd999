"""The Coinbase Advanced Trade adapter: a pure codec, a typed endpoint layer, a session, an actor.

- **Node users** configure the venue: :data:`COINBASE` (the venue kind,
  registered under ``kind: coinbase``), :class:`CoinbaseSettings` (the
  ``coinbase:`` section: a CDP API key, products, hosts), and read
  :class:`CoinbaseLink` (``Node.venues[name]``: cursor, counters).
- **Adapter authors**: :func:`coinbase_capabilities` is what the adapter
  declares; :class:`CdpCredentials` and :func:`build_jwt` are how it
  authenticates (one ES256/EdDSA JWT per REST request and per WebSocket
  subscribe), :func:`jwt_uri` the ``uri`` claim a REST JWT carries.

Everything else is private: the codec (``_codec``: no I/O), the endpoint
layer (``_endpoints``), the session (``_session``: httpx and trio-websocket
on trio) and the actor (``_actor``). Tests that exercise them import them
from those modules and say why.
"""

from ._actor import CoinbaseLink
from ._capabilities import coinbase_capabilities
from ._factory import COINBASE
from ._settings import CoinbaseSettings
from ._signing import CdpCredentials, build_jwt, jwt_uri

__all__ = [
    "COINBASE",
    "CdpCredentials",
    "CoinbaseLink",
    "CoinbaseSettings",
    "build_jwt",
    "coinbase_capabilities",
    "jwt_uri",
]

"""The Alpaca adapter: a pure codec, a typed endpoint layer, a session, a broker actor.

- **Node users** configure the venue: :data:`ALPACA` (the venue kind,
  registered under ``kind: alpaca``), :class:`AlpacaSettings` (the ``alpaca:``
  section: key id and secret, symbols, hosts, what a DAY order does outside
  the session: :class:`OutsideSession`), and read :class:`AlpacaLink`
  (``Node.venues[name]``: cursor, positions, counters).
- **Adapter authors**: :func:`alpaca_capabilities` is what the adapter declares.

Everything else is private: the codec (``_codec``: no I/O), the endpoint
layer (``_endpoints``), the session (``_session``: httpx and trio-websocket
on trio) and the actor (``_actor``). Tests that exercise them import them
from those modules and say why.
"""

from ._actor import AlpacaLink
from ._capabilities import alpaca_capabilities
from ._factory import ALPACA
from ._settings import AlpacaSettings, OutsideSession

__all__ = ["ALPACA", "AlpacaLink", "AlpacaSettings", "OutsideSession", "alpaca_capabilities"]

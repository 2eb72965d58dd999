"""The OANDA v20 adapter: a pure codec, a typed endpoint layer, a session, a broker actor.

- **Node users** configure the venue: :data:`OANDA` (the venue kind,
  registered under ``kind: oanda``), :class:`OandaSettings` (the ``oanda:``
  section), and read :class:`OandaLink` (``Node.venues[name]``: cursor,
  positions, counters).
- **Adapter authors**: :func:`oanda_capabilities` is what the adapter declares.

Everything else is private: the codec (``_codec``: no I/O), the endpoint
layer (``_endpoints``: oandapyV20's endpoint classes), the session
(``_session``: oandapyV20 REST in worker threads, httpx streams on trio)
and the actor (``_actor``). Tests that exercise them import them from
those modules and say why.
"""

from ._actor import OandaLink
from ._capabilities import oanda_capabilities
from ._factory import OANDA
from ._settings import OandaSettings

__all__ = ["OANDA", "OandaLink", "OandaSettings", "oanda_capabilities"]

"""The OKX v5 adapter (spot): a pure codec, a typed endpoint layer, a session, a broker actor.

- **Node users** configure the venue: :data:`OKX` (the venue kind,
  registered under ``kind: okx``), :class:`OkxSettings` (the ``okx:``
  section), and read :class:`OkxLink` (``Node.venues[name]``: cursor,
  counters).
- **Adapter authors**: :func:`okx_capabilities` is what the adapter declares.

Everything else is private: signing (``_signing``), the codec (``_codec``:
no I/O), the endpoint layer (``_endpoints``: paths, operations, limits),
the session (``_session``: httpx and trio-websocket on trio) and the actor
(``_actor``). Tests that exercise them import them from those modules and
say why.
"""

from ._actor import OkxLink
from ._capabilities import okx_capabilities
from ._factory import OKX
from ._settings import OkxSettings

__all__ = ["OKX", "OkxLink", "OkxSettings", "okx_capabilities"]

"""The Interactive Brokers adapter: TWS / IB Gateway through ib_async.

- **Node users** configure the venue: :data:`IBKR` (the venue kind,
  registered under ``kind: ibkr``), :class:`IbkrSettings` (the ``ibkr:``
  section) with one :class:`IbkrContractSpec` per instrument, and read
  :class:`IbkrLink` (``Node.venues[name]``: positions, cursor, counters).
- **Adapter authors**: :func:`ibkr_capabilities` is what the adapter declares.

Everything else is private: the codec (``_codec``: ib_async objects <-> our
messages, no I/O), the endpoint layer (``_endpoints``: the ib_async requests
and what each costs), the asyncio loop an incarnation owns (``_loop``), the
session (``_session``: the socket and what TWS sends) and the actor
(``_actor``). Tests that exercise them import them from those modules and
say why.
"""

from ._actor import IbkrLink
from ._capabilities import ibkr_capabilities
from ._factory import IBKR
from ._settings import IbkrContractSpec, IbkrSettings

__all__ = ["IBKR", "IbkrContractSpec", "IbkrLink", "IbkrSettings", "ibkr_capabilities"]

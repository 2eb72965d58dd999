"""The generic CCXT adapter: any exchange ccxt knows, by its ccxt id.

- **Node users** configure the venue: :data:`CCXT` (the venue kind, ``kind:
  ccxt``) and :class:`CcxtSettings` (the ``ccxt:`` section: exchange id,
  credentials, options, sandbox, URL overrides, symbols, required features),
  and read :class:`CcxtLink` (``Node.venues[name]``: cursors, counters).
- **Adapter authors**: :func:`ccxt_capabilities` derives what a venue declares
  from ccxt's ``has`` flags.

Everything else is private: the codec (``_codec``: ccxt's unified orders,
trades and errors as ours, no I/O), the endpoint layer (``_endpoints``: the
only caller of ccxt's methods, client ids per exchange), the session
(``_session``: the exchange object on the incarnation's asyncio loop, its
streams) and the actor (``_actor``). ccxt itself is imported only once a
ccxt venue is configured.
"""

from typing import TYPE_CHECKING

from ._capabilities import ccxt_capabilities
from ._factory import CCXT
from ._settings import CcxtSettings

if TYPE_CHECKING:
    from ._actor import CcxtLink


def __getattr__(name: str) -> object:
    # CcxtLink lives with the actor, which imports ccxt: only when asked for.
    if name == "CcxtLink":
        from ._actor import CcxtLink  # noqa: PLC0415

        return CcxtLink
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CCXT", "CcxtLink", "CcxtSettings", "ccxt_capabilities"]

"""A third-party venue adapter that lives outside ``src/``: the ``toy`` venue kind.

Three layers, as every tradenode adapter: a pure codec (``_codec``), a trio
session (``_session``) and a broker actor on ``BrokerBase`` (``_actor``);
plus its settings model, its capabilities and its factory. ``fake`` is the
venue it talks to in tests, which never imports any of this.

Registered through the ``tradenode.venues`` entry point group as
``toy = tests.toyvenue:VENUE_KIND``.
"""

from ._actor import ToyBroker, ToyLink
from ._capabilities import TOY_CLIENT_ID_RULES, toy_capabilities
from ._factory import VENUE_KIND, build_toy
from ._settings import ToySettings

__all__ = [
    "TOY_CLIENT_ID_RULES",
    "VENUE_KIND",
    "ToyBroker",
    "ToyLink",
    "ToySettings",
    "build_toy",
    "toy_capabilities",
]

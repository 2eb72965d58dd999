"""The embedded paper venue and its broker actor: the default venue of every node.

Public API tiers (``tests/test_public_api.py`` pins them):

- **Node users** configure it: :data:`PAPER` (the venue kind, ``kind:
  paper``), :class:`PaperSettings` (the ``paper:`` section), and read
  :class:`PaperLink` (``Node.venues[name]``).
- **Test and benchmark authors** hand a node their own
  :class:`PaperVenue` (``Node.add_venue(config, venue=...)``), possibly a
  subclass whose ``connect`` wraps the :class:`PaperSession`; the broker
  is :class:`PaperBroker`, its declaration :func:`paper_capabilities`.

The codec (``_codec``), the market ticker (``_market``) and the factory are
private.
"""

from ._actor import PaperBroker, PaperLink
from ._capabilities import paper_capabilities
from ._factory import PAPER
from ._settings import PaperSettings
from ._venue import PaperSession, PaperVenue

__all__ = [
    "PAPER",
    "PaperBroker",
    "PaperLink",
    "PaperSession",
    "PaperSettings",
    "PaperVenue",
    "paper_capabilities",
]

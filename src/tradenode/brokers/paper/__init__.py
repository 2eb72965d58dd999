"""The embedded paper venue and its broker actor: the default venue of every node."""

from ._actor import PaperBroker, PaperLink
from ._capabilities import paper_capabilities
from ._codec import STATUS_MAP, execution_id, stream_event_to_message, to_status_report
from ._factory import PAPER, build_paper
from ._market import PaperMarket
from ._settings import PaperSettings
from ._venue import CorruptEvent, PaperSession, PaperVenue, SessionClosed

__all__ = [
    "PAPER",
    "STATUS_MAP",
    "CorruptEvent",
    "PaperBroker",
    "PaperLink",
    "PaperMarket",
    "PaperSession",
    "PaperSettings",
    "PaperVenue",
    "SessionClosed",
    "build_paper",
    "execution_id",
    "paper_capabilities",
    "stream_event_to_message",
    "to_status_report",
]

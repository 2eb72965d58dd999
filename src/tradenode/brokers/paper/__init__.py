"""The embedded paper venue and its broker actor: the default venue of every node."""

from ._actor import PaperBroker, PaperLink
from ._capabilities import paper_capabilities
from ._codec import STATUS_MAP, execution_id, stream_event_to_message, to_status_report
from ._market import PaperMarket
from ._venue import CorruptEvent, PaperSession, PaperVenue, SessionClosed

__all__ = [
    "STATUS_MAP",
    "CorruptEvent",
    "PaperBroker",
    "PaperLink",
    "PaperMarket",
    "PaperSession",
    "PaperVenue",
    "SessionClosed",
    "execution_id",
    "paper_capabilities",
    "stream_event_to_message",
    "to_status_report",
]

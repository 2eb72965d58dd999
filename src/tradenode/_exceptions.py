"""Every error tradenode raises on purpose, in one tree.

Callers catch by meaning, not by origin: a broker's socket error, an
httpx timeout and a malformed venue payload all arrive as one of these,
converted at the boundary with ``raise Ours(...) from exc`` so the
foreign cause stays on ``__cause__``::

    TradenodeError
    ├── DecodeError              bytes that are not a valid message frame
    ├── ConfigError              a config file or value that cannot be used
    ├── TradingStateTransitionError
    │                            a trading state change the risk guard's table refuses
    ├── SupervisionError         the actor runtime refused or gave up
    │   ├── ActorStoppedError    the addressed actor has stopped for good
    │   ├── AskTimeoutError      no reply within the caller's deadline
    │   └── RestartIntensityExceeded
    │                            a supervisor saw too many restarts and escalates
    ├── BrokerError              anything a venue connection reports
    │   ├── BrokerConnectionError    transport lost or refused (trips breakers)
    │   ├── BrokerTimeoutError       no answer in time: the outcome is UNKNOWN
    │   ├── BrokerRejectedError      the venue said no (does not trip breakers)
    │   └── MalformedPayloadError    the venue sent something we cannot parse
    ├── JournalError             the journal cannot read, write or make records durable
    │   ├── CorruptJournalError      a damaged record or gap: names the segment and byte offset
    │   ├── JournalVersionError      a segment or snapshot in a format this build does not read
    │   └── SnapshotError            a snapshot file that cannot be used (the journal skips it)
    ├── OmsError                 a command the order manager's state refuses (never a venue report)
    │   ├── DuplicateOrderError      the client order id is already tracked
    │   └── ReplaceRefusedError      a cancel/replace that must not be sent
    └── OmsSnapshotError         an OMS snapshot that cannot be restored, or a restored record
                                 found damaged (not an OmsError: replay must stop on it)

``BrokerError`` carries the broker, the client order id and the request id
when they are known, because an operator reading a log line at 3 a.m. needs
to find the order without a debugger. Messages never include secrets.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "ActorStoppedError",
    "AskTimeoutError",
    "BrokerConnectionError",
    "BrokerError",
    "BrokerRejectedError",
    "BrokerTimeoutError",
    "ConfigError",
    "CorruptJournalError",
    "DecodeError",
    "DuplicateOrderError",
    "JournalError",
    "JournalVersionError",
    "MalformedPayloadError",
    "OmsError",
    "OmsSnapshotError",
    "ReplaceRefusedError",
    "RestartIntensityExceeded",
    "SnapshotError",
    "SupervisionError",
    "TradenodeError",
    "TradingStateTransitionError",
]


class TradenodeError(Exception):
    """Root of every error tradenode raises deliberately."""


class DecodeError(TradenodeError, ValueError):
    """Bytes could not be decoded into a message; the text names the tag and field at fault."""


class ConfigError(TradenodeError, ValueError):
    """A configuration problem; ``key`` names the offending setting."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class TradingStateTransitionError(TradenodeError, ValueError):
    """A trading state change the transition table does not allow for this caller
    (only an operator may leave HALTED, say)."""


class SupervisionError(TradenodeError):
    """The actor runtime could not do what was asked."""


class ActorStoppedError(SupervisionError):
    """The addressed actor has stopped for good; the message went to dead letters."""


class AskTimeoutError(SupervisionError, TimeoutError):
    """An ask got no reply before its deadline."""


class RestartIntensityExceeded(SupervisionError):
    """A supervisor saw more restarts than its intensity allows and escalates."""


class BrokerError(TradenodeError):
    """A venue connection reported a problem."""

    def __init__(
        self,
        message: str,
        *,
        broker: str | None = None,
        client_order_id: str | None = None,
        request_id: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.broker = broker
        self.client_order_id = client_order_id
        self.request_id = request_id
        self.code = code
        self.retry_after = retry_after
        """Seconds the venue asked us to wait (Retry-After); supervisors restart
        the failed broker no sooner."""
        context = ", ".join(
            f"{name}={value}"
            for name, value in (
                ("broker", broker),
                ("client_order_id", client_order_id),
                ("request_id", request_id),
                ("code", code),
                ("retry_after", retry_after),
            )
            if value is not None
        )
        super().__init__(f"{message} [{context}]" if context else message)


class BrokerConnectionError(BrokerError):
    """The transport to the venue is down or refused."""


class BrokerTimeoutError(BrokerError):
    """No answer in time: the request's outcome is unknown, not failed."""


class BrokerRejectedError(BrokerError):
    """The venue refused the request for a business reason."""


class MalformedPayloadError(BrokerError):
    """The venue sent a payload we cannot parse or do not expect."""


class JournalError(TradenodeError):
    """The journal could not read, write or make records durable.

    Raised as is when the journal is closed, or has failed: after a failed
    fsync the kernel may have dropped the unsynced pages, so the journal
    refuses further writes until it is reopened (which rescans the files).
    """


class CorruptJournalError(JournalError):
    """A damaged record, segment or gap in the sequence: not a torn tail, so never repaired silently.

    ``segment`` is the file at fault and ``offset`` the byte offset of the
    first bad record (or header) in it.
    """

    def __init__(self, message: str, *, segment: Path, offset: int) -> None:
        super().__init__(f"{segment}: {message} (byte offset {offset})")
        self.segment = segment
        self.offset = offset


class JournalVersionError(JournalError):
    """A journal file is not in the format (magic and format version) this build reads."""

    def __init__(self, message: str, *, path: Path | None = None) -> None:
        super().__init__(f"{path}: {message}" if path is not None else message)
        self.path = path


class SnapshotError(JournalError, ValueError):
    """A snapshot file that cannot be used: truncated, misnamed or failing its checksum.

    Internal to the journal, which skips such a file with a warning and
    falls back to an older snapshot (``JournalReport`` lists it).
    """


class OmsError(TradenodeError):
    """A command the OMS state refuses; venue reports never raise."""


class DuplicateOrderError(OmsError, ValueError):
    """The client order id is already tracked; the actor should deny the order."""


class ReplaceRefusedError(OmsError, ValueError):
    """A cancel/replace that must not be sent (the message says why)."""


class OmsSnapshotError(TradenodeError, ValueError):
    """A snapshot ``OmsState.restore`` cannot use, or a restored record found damaged.

    Not an :class:`OmsError`: replay takes those for commands the state
    refused and carries on, and a damaged snapshot must stop it instead.
    """

"""Errors the dispatch package raises, each carrying the Twirp code the API must answer with.

livekit-server answers both an invalid field and a conflict between trunks or dispatch rules with
``invalid_argument`` (``twirp.InvalidArgument`` in ``sip.ValidateTrunksIter`` and
``sip.ValidateDispatchRulesIter``), so clients see the same codes from us.
"""

from __future__ import annotations

INVALID_ARGUMENT = "invalid_argument"


class DispatchError(Exception):
    """Base of every dispatch error; ``code`` is the Twirp error code to return."""

    code: str = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(DispatchError):
    """A field of a trunk or dispatch rule is invalid; the message starts with the field path."""

    code = INVALID_ARGUMENT


class ConflictError(DispatchError):
    """Two trunks or two dispatch rules would compete for the same calls; the message names both."""

    code = INVALID_ARGUMENT

    def __init__(self, message: str, first_id: str, second_id: str) -> None:
        super().__init__(message)
        self.first_id = first_id
        self.second_id = second_id


class RequestError(DispatchError):
    """A call request (CreateSIPParticipant, TransferSIPParticipant) cannot be carried out as asked."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

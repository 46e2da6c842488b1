"""The errors a client can receive, each carrying its status, code and retryability.

    BFFError
    ├── InvalidRequest           400 INVALID_REQUEST
    ├── Unauthenticated          401 UNAUTHENTICATED
    ├── Forbidden                403 FORBIDDEN
    ├── NotFound                 404 NOT_FOUND
    ├── VersionNotFound          404 VERSION_NOT_FOUND
    ├── MethodNotAllowed         405 METHOD_NOT_ALLOWED (+ Allow)
    ├── VersionRetired           410 VERSION_RETIRED
    ├── RateLimited              429 RATE_LIMITED (+ Retry-After)
    ├── DependencyUnavailable    503 USER_PROFILE_UNAVAILABLE, CATALOG_UNAVAILABLE, …
    └── ContractUnavailable      503 CONTRACT_UNAVAILABLE

``aggregation.envelope.error_for`` is the one place that turns any exception into the
error envelope; messages here are written for clients and never carry internals.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    INVALID_REQUEST = "INVALID_REQUEST"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    VERSION_NOT_FOUND = "VERSION_NOT_FOUND"
    VERSION_RETIRED = "VERSION_RETIRED"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    RATE_LIMITED = "RATE_LIMITED"
    USER_PROFILE_UNAVAILABLE = "USER_PROFILE_UNAVAILABLE"
    CATALOG_UNAVAILABLE = "CATALOG_UNAVAILABLE"
    CONTRACT_UNAVAILABLE = "CONTRACT_UNAVAILABLE"
    INTERNAL = "INTERNAL"


class BFFError(Exception):
    """An error with a client-facing status, code and message."""

    status = 500
    code = ErrorCode.INTERNAL
    retryable = False
    default_message = "An internal error occurred."

    def __init__(self, message: str | None = None, *, headers: dict[str, str] | None = None):
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        self.headers = headers or {}


class InvalidRequest(BFFError):
    """The request is malformed: a bad id, too many ids, a bad parameter value."""

    status = 400
    code = ErrorCode.INVALID_REQUEST
    default_message = "The request is invalid."


class Unauthenticated(BFFError):
    """No token, or one that is malformed, expired, wrongly signed or unsigned."""

    status = 401
    code = ErrorCode.UNAUTHENTICATED
    default_message = "A valid bearer token is required."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer realm="bff"'})


class Forbidden(BFFError):
    """A valid token that may not do this: another client's audience, a missing scope."""

    status = 403
    code = ErrorCode.FORBIDDEN
    default_message = "This token may not call this API."


class NotFound(BFFError):
    """The resource does not exist (a critical dependency answered 404)."""

    status = 404
    code = ErrorCode.NOT_FOUND
    default_message = "No such resource."


class VersionNotFound(BFFError):
    """The major version in the URL does not exist."""

    status = 404
    code = ErrorCode.VERSION_NOT_FOUND
    default_message = "This API version does not exist."


class MethodNotAllowed(BFFError):
    """The client API answers GET and HEAD only; ``Allow`` lists them."""

    status = 405
    code = ErrorCode.METHOD_NOT_ALLOWED
    default_message = "This resource answers GET and HEAD only."

    def __init__(self, allowed: tuple[str, ...]) -> None:
        super().__init__(headers={"Allow": ", ".join(allowed)})


class VersionRetired(BFFError):
    """The major version in the URL is past its sunset."""

    status = 410
    code = ErrorCode.VERSION_RETIRED
    default_message = "This API version has been retired."


class RateLimited(BFFError):
    """Too many requests; ``Retry-After`` says when to come back."""

    status = 429
    code = ErrorCode.RATE_LIMITED
    retryable = True
    default_message = "Too many requests."

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(headers={"Retry-After": str(max(1, retry_after_seconds))})


class DependencyUnavailable(BFFError):
    """A critical dependency failed, so the page cannot be built."""

    status = 503
    retryable = True

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class ContractUnavailable(BFFError):
    """This instance can serve no approved version of the contract."""

    status = 503
    code = ErrorCode.CONTRACT_UNAVAILABLE
    retryable = True
    default_message = "This API version is temporarily unavailable."

"""Domain errors that services raise; routers map them to HTTP answers."""

from __future__ import annotations


class DomainError(Exception):
    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


class Unavailable(DomainError):
    status_code = 503


class TooMany(DomainError):
    """The queue is full: try again later (429 with Retry-After)."""

    status_code = 429
    retry_after = 30

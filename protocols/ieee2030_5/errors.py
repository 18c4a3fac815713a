"""Errors for inputs the adapter cannot use. Each carries a stable code for the audit (`DirectiveSink.reject`)."""

from __future__ import annotations


class InputError(Exception):
    """A document or value from the server that the gateway refuses; `code` is stable, the message precise."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class TransportError(Exception):
    """An HTTP exchange that failed: connection refused, TLS, timeout, or a 4xx/5xx answer."""

    def __init__(self, code: str, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

"""Errors the data plane raises, each carrying its HTTP status; the app maps them to `{"error": ...}` in one place."""

from __future__ import annotations


class ServingError(Exception):
    status = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidRequest(ServingError):
    status = 400


class ModelNotFound(ServingError):
    status = 404


class PayloadTooLarge(ServingError):
    status = 413


class ModelNotReady(ServingError):
    status = 503


class ModelFailed(ServingError):
    """The model raised on a request it accepted: a server error, counted as one."""

    status = 500

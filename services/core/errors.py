"""The one error type every bad input maps to, rendered as ``{"error": {"code", "message"}}``."""

from __future__ import annotations

from collections.abc import Mapping


class ApiError(Exception):
    """A request the service refuses, with its HTTP status and a stable code."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def body(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


def bad_request(message: str, code: str = "bad_request") -> ApiError:
    return ApiError(400, code, message)


def not_found(message: str, code: str = "not_found") -> ApiError:
    return ApiError(404, code, message)


def unauthorized(message: str = "a valid bearer token is required") -> ApiError:
    return ApiError(401, "unauthorized", message, {"WWW-Authenticate": 'Bearer realm="portal-pulse"'})


def unavailable(message: str = "storage is not answering; retry shortly", retry_after: int = 1) -> ApiError:
    return ApiError(503, "unavailable", message, {"Retry-After": str(retry_after)})


class StorageUnavailable(ApiError):
    """Storage did not take the call (refused at once while it is failing, failed, or
    timed out): 503 + Retry-After. It is one of ``redis_conn.STORAGE_ERRORS`` too, so
    code that falls back on a storage failure treats it like one."""

    def __init__(self, message: str = "storage is not answering; retry shortly") -> None:
        super().__init__(503, "unavailable", message, {"Retry-After": "1"})

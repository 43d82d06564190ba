"""API errors as Kubernetes Status objects.

Every error the API can return is a `StatusError`; the HTTP layer turns it into a
`Status` body with the same code. Validation collects `FieldError`s (all of them, not
the first) and raises `Invalid`, whose causes name each field, as the Kubernetes API
does. Pure code (validation, patching, selectors) raises these directly, so what a user
sees is decided where the knowledge is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

# Cause reasons, as metav1.CauseType spells them.
REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
DUPLICATE = "FieldValueDuplicate"
FORBIDDEN = "FieldValueForbidden"
TOO_LONG = "FieldValueTooLong"
TOO_MANY = "FieldValueTooMany"
UNKNOWN_FIELD = "FieldValueUnknown"  # strict field validation

_PREFIX = {
    REQUIRED: "Required value",
    INVALID: "Invalid value",
    NOT_SUPPORTED: "Unsupported value",
    DUPLICATE: "Duplicate value",
    FORBIDDEN: "Forbidden",
    TOO_LONG: "Too long",
    TOO_MANY: "Too many",
    UNKNOWN_FIELD: "unknown field",
}

_NO_VALUE = object()


def _render(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return repr(value)


@dataclass(frozen=True)
class FieldError:
    """One thing wrong with one field, e.g. ``spec.replicas: Invalid value: -1: must be >= 0``."""

    reason: str
    field: str
    detail: str = ""
    value: Any = _NO_VALUE

    def message(self) -> str:
        if self.reason == UNKNOWN_FIELD:
            return f'unknown field "{self.field}"'
        parts = [_PREFIX.get(self.reason, self.reason)]
        if self.value is not _NO_VALUE and self.reason in (INVALID, NOT_SUPPORTED, DUPLICATE):
            parts.append(_render(self.value))
        if self.detail:
            parts.append(self.detail)
        return ": ".join(parts)

    def __str__(self) -> str:
        if self.reason == UNKNOWN_FIELD:
            return self.message()
        return f"{self.field}: {self.message()}"

    def cause(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message() if self.reason == UNKNOWN_FIELD
                else str(self), "field": self.field}


def required(field: str, detail: str = "") -> FieldError:
    return FieldError(REQUIRED, field, detail)


def invalid(field: str, value: Any, detail: str) -> FieldError:
    return FieldError(INVALID, field, detail, value)


def not_supported(field: str, value: Any, allowed: list[str]) -> FieldError:
    quoted = ", ".join(f'"{a}"' for a in allowed)
    return FieldError(NOT_SUPPORTED, field, f"supported values: {quoted}", value)


def duplicate(field: str, value: Any) -> FieldError:
    return FieldError(DUPLICATE, field, "", value)


def forbidden(field: str, detail: str) -> FieldError:
    return FieldError(FORBIDDEN, field, detail)


def too_long(field: str, limit: int) -> FieldError:
    return FieldError(TOO_LONG, field, f"must have at most {limit} bytes")


def unknown_field(field: str) -> FieldError:
    return FieldError(UNKNOWN_FIELD, field)


class StatusError(Exception):
    """An API error with the HTTP code, reason and message of a Kubernetes Status."""

    code = 500
    reason = "InternalError"

    def __init__(
        self,
        message: str,
        *,
        causes: list[dict[str, str]] | None = None,
        kind: str = "",
        group: str = "",
        name: str = "",
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.causes = causes or []
        self.kind = kind
        self.group = group
        self.name = name
        self.retry_after = retry_after

    def status(self) -> dict[str, Any]:
        details: dict[str, Any] = {}
        if self.name:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = self.causes
        if self.retry_after is not None:
            details["retryAfterSeconds"] = self.retry_after
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if details:
            body["details"] = details
        return body


class BadRequest(StatusError):
    code, reason = 400, "BadRequest"


class Unauthorized(StatusError):
    code, reason = 401, "Unauthorized"


class Forbidden(StatusError):
    code, reason = 403, "Forbidden"


class NotFound(StatusError):
    code, reason = 404, "NotFound"


class MethodNotAllowed(StatusError):
    code, reason = 405, "MethodNotAllowed"


class NotAcceptable(StatusError):
    code, reason = 406, "NotAcceptable"


class AlreadyExists(StatusError):
    code, reason = 409, "AlreadyExists"


class Conflict(StatusError):
    code, reason = 409, "Conflict"


class Expired(StatusError):
    code, reason = 410, "Expired"


class RequestEntityTooLarge(StatusError):
    code, reason = 413, "RequestEntityTooLarge"


class UnsupportedMediaType(StatusError):
    code, reason = 415, "UnsupportedMediaType"


class Invalid(StatusError):
    code, reason = 422, "Invalid"

    def __init__(self, kind: str, name: str, errors: list[FieldError], group: str = "") -> None:
        shown = name or "<unknown>"
        if len(errors) == 1:
            summary = str(errors[0])
        else:
            summary = "[" + ", ".join(str(e) for e in errors) + "]"
        super().__init__(
            f'{kind} "{shown}" is invalid: {summary}',
            causes=[e.cause() for e in errors],
            kind=kind,
            group=group,
            name=name,
        )
        self.errors = errors


class InternalError(StatusError):
    code, reason = 500, "InternalError"


class ServiceUnavailable(StatusError):
    code, reason = 503, "ServiceUnavailable"


def not_found(resource: str, name: str, group: str = "") -> NotFound:
    qualified = f"{resource}.{group}" if group else resource
    return NotFound(f'{qualified} "{name}" not found', kind=resource, group=group, name=name)


def already_exists(resource: str, name: str, group: str = "") -> AlreadyExists:
    qualified = f"{resource}.{group}" if group else resource
    return AlreadyExists(f'{qualified} "{name}" already exists', kind=resource, group=group,
                         name=name)


def conflict(resource: str, name: str, why: str, group: str = "") -> Conflict:
    qualified = f"{resource}.{group}" if group else resource
    return Conflict(f'Operation cannot be fulfilled on {qualified} "{name}": {why}',
                    kind=resource, group=group, name=name)

"""A faithful port of the official Go client's two stream parsers, to check our streams against its rules.

Source: github.com/Encratahq/encrata-go, file `bulk.go` (functions `BulkLookup`, `parseBulkSearchStream`,
`parseSSEData`), with the `Person` struct of `types.go`, and how it turns an error answer into an error value
(`newAPIError` of `transport.go`, the types of `errors.go`). Go's rules that matter here are kept:
- `bufio.Scanner` splits on `\\n`, drops a trailing `\\r`, and fails on a line over 64 KiB (`bufio.MaxScanTokenSize`);
- `parseSSEData` keeps only lines starting with `data:` and trims the rest;
- `json.Unmarshal` into `Person` fails when a field's JSON type does not fit (a number into a string field, ...),
  and matches keys to fields case-insensitively;
- `BulkLookup` makes a `Person` of every data line until `[DONE]`;
- `newAPIError` unmarshals the body into `{Message "message"; Error "error"; Code "code"}` (ignoring the error, so
  a body that is not JSON leaves them empty, and a field of another JSON type is left empty), takes `Message`, else
  `Error`, else the status text as the message, `Code` as the code, and picks the type by status: 401
  AuthenticationError, 402 InsufficientCreditsError, 400 InvalidRequestError, 429 RateLimitError, else APIError;
- `parseBulkSearchStream` appends the items of a frame carrying a `results` array instead of the frame, skips a
  frame that is exactly `{"total": N}`, appends every other frame, reads `credits_used` from any frame, and reports
  `len(results)` when `credits_used` is 0.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

MAX_SCAN_TOKEN = 64 * 1024


class GoClientError(Exception):
    """Where the Go client would return an error instead of results."""


def _scan_lines(data: bytes) -> list[str]:
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = []
    for line in lines:
        if len(line) > MAX_SCAN_TOKEN:
            raise GoClientError("bufio.Scanner: token too long")
        out.append(line.removesuffix(b"\r").decode("utf-8", errors="replace"))
    return out


def parse_sse_data(line: str) -> str:
    """`parseSSEData`."""
    if not line.startswith("data:"):
        return ""
    return line.removeprefix("data:").strip()


# Person's fields (types.go) by JSON name: "string", "socials", "breaches", "registered", "news", "publications".
_PERSON_FIELDS = {
    **dict.fromkeys(
        [
            "name",
            "email",
            "company",
            "role",
            "industry",
            "location",
            "birthplace",
            "current_location",
            "bio",
            "age",
            "gender",
            "education",
            "phone",
            "photo",
            "validity",
        ],
        "string",
    ),
    "socials": "socials",
    "breaches": "breaches",
    "registered_services": "registered",
    "news": "news",
    "publications": "publications",
}


def _is_int(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, float) and value.is_integer())


def _string_list(value: Any) -> bool:
    return value is None or (isinstance(value, list) and all(v is None or isinstance(v, str) for v in value))


def _object_of_strings(value: Any, names: tuple[str, ...]) -> bool:
    return value is None or (
        isinstance(value, dict) and all(v is None or isinstance(v, str) for k, v in value.items() if k.lower() in names)
    )


def _fits(kind: str, value: Any) -> bool:
    if value is None:
        return True
    if kind == "string":
        return isinstance(value, str)
    if kind == "socials":
        return _object_of_strings(value, ("linkedin", "twitter", "instagram", "facebook", "github"))
    if kind in ("breaches", "registered"):
        if not isinstance(value, dict):
            return False
        lowered = {k.lower(): v for k, v in value.items()}
        return (lowered.get("count") is None or _is_int(lowered["count"])) and all(
            _string_list(lowered.get(name)) for name in ("services", "exposed_data")
        )
    if kind == "news":
        return isinstance(value, list) and all(_object_of_strings(v, ("title", "url", "date", "source")) for v in value)
    if kind == "publications":
        return isinstance(value, list) and all(
            v is None
            or (
                isinstance(v, dict)
                and _object_of_strings(v, ("title", "url"))
                and all(v2 is None or _is_int(v2) for k2, v2 in v.items() if k2.lower() in ("year", "citations"))
            )
            for v in value
        )
    raise AssertionError(kind)


@dataclass
class Person:
    """The fields of Go's `Person` our tests read."""

    email: str = ""
    name: str = ""
    company: str = ""
    validity: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


def unmarshal_person(payload: str) -> Person:
    """`json.Unmarshal([]byte(payload), &person)`."""
    try:
        data = json.loads(payload)
    except ValueError as exc:
        raise GoClientError(f"decoding bulk lookup result: {exc}") from exc
    if data is None:
        return Person()
    if not isinstance(data, dict):
        raise GoClientError("decoding bulk lookup result: cannot unmarshal into Go value of type Person")
    values: dict[str, Any] = {}
    for key, value in data.items():
        name = key if key in _PERSON_FIELDS else next((f for f in _PERSON_FIELDS if f == key.lower()), None)
        if name is None:
            continue
        if not _fits(_PERSON_FIELDS[name], value):
            raise GoClientError(f"decoding bulk lookup result: cannot unmarshal {key} into Person.{name}")
        values[name] = value
    return Person(
        email=values.get("email") or "",
        name=values.get("name") or "",
        company=values.get("company") or "",
        validity=values.get("validity") or "",
        raw=data,
    )


def bulk_lookup(data: bytes) -> list[Person]:
    """What `BulkLookup` sends on its results channel for a response body (raises where it sends an error)."""
    people = []
    for line in _scan_lines(data):
        payload = parse_sse_data(line)
        if payload == "":
            continue
        if payload == "[DONE]":
            return people
        people.append(unmarshal_person(payload))
    return people


@dataclass
class BulkSearchResponse:
    """Go's `BulkSearchResponse`."""

    results: list[dict[str, Any]] = field(default_factory=list)
    credits_used: int = 0


def parse_bulk_search_stream(data: bytes) -> BulkSearchResponse:
    """`parseBulkSearchStream`."""
    if not data.strip():
        return BulkSearchResponse()
    if b"data:" not in data:
        body = json.loads(data)
        return BulkSearchResponse(body.get("results") or [], int(body.get("credits_used") or 0))
    resp = BulkSearchResponse()
    for line in _scan_lines(data):
        payload = parse_sse_data(line)
        if payload == "":
            continue
        if payload == "[DONE]":
            break
        try:
            item = json.loads(payload)
        except ValueError as exc:
            raise GoClientError(f"decoding bulk search result: {exc}") from exc
        if not isinstance(item, dict):
            raise GoClientError("decoding bulk search result: cannot unmarshal into RawObject")
        raw_results = item.get("results")
        if isinstance(raw_results, list):
            resp.results += [obj for obj in raw_results if isinstance(obj, dict)]
        elif "total" not in item or len(item) > 1:
            resp.results.append(item)
        credits = item.get("credits_used")
        if isinstance(credits, (int, float)) and not isinstance(credits, bool):
            resp.credits_used = int(credits)
    if resp.credits_used == 0:
        resp.credits_used = len(resp.results)
    return resp


# `net/http`'s StatusText for the statuses the API answers.
_STATUS_TEXT = {
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    410: "Gone",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
_ERROR_TYPES = {
    401: "AuthenticationError",
    402: "InsufficientCreditsError",
    400: "InvalidRequestError",
    429: "RateLimitError",
}


@dataclass
class GoApiError:
    """An `EncrataError` with its `apiBase`: the Go type's name, `StatusCode`, `Code` and `Message`."""

    type: str
    status_code: int
    code: str
    message: str


def _string_field(data: dict[str, Any], name: str) -> str:
    """A string field as `encoding/json` fills it: the exact key, else a case-insensitive match; "" for another type."""
    keys = [k for k in data if k == name] or [k for k in data if k.lower() == name]
    value = data[keys[-1]] if keys else None
    return value if isinstance(value, str) else ""


def new_api_error(status: int, body: bytes) -> GoApiError:
    """`newAPIError(status, body, retryAfter)`: what the Go client returns for an answer of 400 or more."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    fields = data if isinstance(data, dict) else {}
    message = _string_field(fields, "message") or _string_field(fields, "error") or _STATUS_TEXT.get(status, "")
    return GoApiError(_ERROR_TYPES.get(status, "APIError"), status, _string_field(fields, "code"), message)

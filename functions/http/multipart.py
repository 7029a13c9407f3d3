"""The multipart form that creates (or previews) a job, parsed with the standard library's MIME parser."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from functions.errors import InputError

FILENAME_MAX = 255
# The fields of the multipart form that creates a job.
FORM_FIELDS = frozenset({"file", "type", "column", "sheet", "file_size", "country", "country_column"})


# The multipart form that creates (or previews) a job.
FORM: dict[str, Any] = {
    "schema": {
        "type": "object",
        "required": ["file", "type"],
        "additionalProperties": False,
        "properties": {
            "file": {
                "type": "string",
                "format": "binary",
                "description": "the file, at most 4 MiB: CSV, gzip (.csv.gz), ZIP of one CSV or XLSX, or XLSX, told "
                "apart by content; a preview may take the first 1 MiB of a larger one, with `file_size`",
            },
            "type": {
                "type": "string",
                "enum": ["email", "phone", "company", "domain", "ip", "darkweb"],
                "examples": ["email"],
            },
            # Without an example, a docs page fills each field with "string", which no file has as a column (nor as
            # a sheet): the optional fields' examples are empty, which the page leaves out (detected, first sheet).
            "column": {
                "type": "string",
                "maxLength": 255,
                "description": "header name or 1-based number; empty or left out: detected from the file",
                "examples": [""],
            },
            "sheet": {
                "type": "string",
                "maxLength": 255,
                "description": "a workbook's sheet, by name (default: first)",
                "examples": [""],
            },
        },
    }
}
# The preview takes the form only (a file to look at), or the head of a larger file with its size.
PREVIEW_FORM = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                **FORM["schema"],
                "properties": {
                    **FORM["schema"]["properties"],
                    "file_size": {
                        "type": "string",
                        "pattern": "^[0-9]*$",
                        "description": "the whole file's size in bytes, when `file` is its first 1 MiB",
                        "examples": [""],
                    },
                },
            }
        }
    },
}


@dataclass
class Upload:
    """The fields of a multipart job creation request."""

    fields: dict[str, str]
    file: bytes | None
    filename: str


def parse_multipart(content_type: str, body: bytes) -> Upload:
    """Parse multipart/form-data with the standard library's MIME parser (no extra dependency).

    Hand-parsed rather than through Powertools' `File`/`Form`: the size limit is checked before any parsing, and a
    missing, repeated or unknown field gets the project's own codes, which a generic validation error cannot give.
    """
    if not content_type.lower().startswith("multipart/form-data"):
        raise InputError("send the file as multipart/form-data with a `file` field", code="invalid_content_type")
    import email.parser  # with the first form, not the function's cold start (~4 ms)
    import email.policy

    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise InputError("the multipart body could not be parsed", code="invalid_multipart")
    fields: dict[str, str] = {}
    file: bytes | None = None
    filename = ""
    seen: set[str] = set()
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        if name not in FORM_FIELDS:
            raise InputError(
                f"unknown form field `{name}`; the form takes {', '.join(sorted(FORM_FIELDS))}",
                code="unknown_parameter",
                parameter=name,
            )
        if name in seen:
            # Which of two files (or types) the caller meant cannot be guessed; using one silently would be a loss.
            raise InputError(f"the form has more than one `{name}` field", code="duplicate_field", field=name)
        seen.add(name)
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if name == "file":
            file = data
            filename = part.get_filename() or "upload.csv"
            if len(filename) > FILENAME_MAX:
                raise InputError(
                    f"the file name is longer than {FILENAME_MAX} characters",
                    code="invalid_parameter",
                    parameter="filename",
                )
        else:
            value = data.decode("utf-8", errors="replace").strip()
            if len(value) > FILENAME_MAX:
                raise InputError(
                    f"`{name}` is longer than {FILENAME_MAX} characters", code="invalid_parameter", parameter=name
                )
            fields[name] = value
    return Upload(fields, file, filename)

"""A small client of the bulkapi HTTP API (httpx, and httpx-sse for the streams), used by the CLI.

Every error answer becomes an `ApiError` carrying the API's `error` code and `message`, and the class of the
failure, which the CLI turns into its exit code.
"""

from __future__ import annotations

import email.message
import email.utils
import json
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import httpx
from httpx_sse import connect_sse

DEFAULT_URL = "http://127.0.0.1:8080"
# Files up to this size go through the multipart route; larger ones through the presigned upload (README: Limits).
MULTIPART_MAX_BYTES = 4 * 1024 * 1024
# A larger file is previewed from its head: its first MiB, with its whole size (README: Previews).
PREVIEW_HEAD_BYTES = 1024 * 1024
TERMINAL = frozenset({"completed", "failed", "cancelled"})
# Per read/write, not in all: a large upload or download may take minutes, a stalled one is given up. Streams send
# a keep-alive comment every 15 s, so a minute without a byte means the connection is gone.
TRANSFER_TIMEOUT = httpx.Timeout(30.0, read=120.0, write=120.0)
STREAM_TIMEOUT = httpx.Timeout(30.0, read=60.0)


class ApiError(Exception):
    """An error answer of the API (or no answer at all)."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.details = details or {}

    @property
    def kind(self) -> str:
        """`auth`, `credits`, `server` or `input`: what the caller can do about it."""
        if self.status in (401, 403):
            return "auth"
        if self.status == 402:
            return "credits"
        if self.status == 0 or self.status >= 500:
            return "server"
        return "input"


@dataclass
class Client:
    """The API at `url`, authenticated with `key`."""

    url: str
    key: str
    timeout: float = 60.0

    def __post_init__(self) -> None:
        self.http = httpx.Client(
            base_url=self.url.rstrip("/"),
            headers={"Authorization": f"Bearer {self.key}", "User-Agent": "bulkapi-cli/1"},
            timeout=self.timeout,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    # --- plumbing ---------------------------------------------------------------------------------------------------
    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(0, "connection_failed", f"could not reach {self.url}: {exc}") from exc
        if response.status_code >= 400:
            raise _error_of(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return dict(self._send(method, path, **kwargs).json())

    # --- jobs -------------------------------------------------------------------------------------------------------
    def create_job(
        self,
        file: Path,
        job_type: str,
        column: str | None = None,
        idempotency_key: str | None = None,
        sheet: str | None = None,
        **phone: str | None,
    ) -> dict[str, Any]:
        """Create a job from a file (CSV, .gz, .zip, .xlsx): multipart up to 4 MiB, else the presigned upload
        straight to storage. `phone`: a phone job's `country` and `country_column`."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        given = {"column": column, "sheet": sheet, **phone}
        options = {k: v for k, v in given.items() if v}
        if file.stat().st_size <= MULTIPART_MAX_BYTES:
            data = {"type": job_type, **options}
            with file.open("rb") as handle:
                return self._json(
                    "POST",
                    "/api/bulk-jobs",
                    files={"file": (file.name, handle, "text/csv")},
                    data=data,
                    headers=headers,
                )
        body = {"type": job_type, "filename": file.name, **options}
        job = self._json("POST", "/api/bulk-jobs", json=body, headers=headers)
        upload = job["upload"]
        with file.open("rb") as handle:
            try:
                answer = httpx.post(
                    upload["url"],
                    data=upload["fields"],
                    files={"file": (file.name, handle, "text/csv")},
                    timeout=TRANSFER_TIMEOUT,
                )
            except httpx.HTTPError as exc:
                raise ApiError(0, "upload_failed", f"the upload to storage failed: {exc}") from exc
        if answer.status_code >= 300:
            raise ApiError(answer.status_code, "upload_failed", f"storage refused the upload: {answer.text[:300]}")
        return job

    def preview(
        self, file: Path, job_type: str, column: str | None = None, sheet: str | None = None, **phone: str | None
    ) -> dict[str, Any]:
        """What creating the job would read and cost, with the first rows enriched; creates nothing. A file over
        the form's 4 MiB is previewed from its first MiB (the answer says `truncated` and estimates its rows)."""
        given = {"column": column, "sheet": sheet, **phone}
        data = {"type": job_type, **{k: v for k, v in given.items() if v}}
        size = file.stat().st_size
        with file.open("rb") as handle:
            if size <= MULTIPART_MAX_BYTES:
                content = handle.read()
            else:
                content = handle.read(PREVIEW_HEAD_BYTES)
                data["file_size"] = str(size)
        return self._json("POST", "/api/bulk-jobs/preview", files={"file": (file.name, content, "text/csv")}, data=data)

    def job(self, job_id: str) -> dict[str, Any]:
        """A job's status and progress."""
        return self._json("GET", "/api/bulk-jobs", params={"id": job_id})

    def jobs(self, limit: int = 20, status: str | None = None) -> list[dict[str, Any]]:
        """The account's most recent jobs."""
        params: dict[str, Any] = {"limit": limit, **({"status": status} if status else {})}
        return list(self._json("GET", "/api/bulk-jobs", params=params)["jobs"])

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a running job (never deletes anything: an ended job answers 409 job_finished)."""
        return self._json("DELETE", "/api/bulk-jobs", params={"id": job_id})

    def purge(self, job_id: str) -> dict[str, Any]:
        """Delete an ended job: its files and its result (its ledger entries stay)."""
        return self._json("DELETE", "/api/bulk-jobs", params={"id": job_id, "purge": "true"})

    def download(self, job_id: str, out: Path, **variant: str) -> Path:
        """The result (or a variant of it) into `out`, following the redirect of a large one; waits for a variant."""
        params = {"id": job_id, **{k: v for k, v in variant.items() if v}}
        while True:
            response = self._send("GET", "/api/bulk-jobs/download", params=params, follow_redirects=False)
            if response.status_code == 202:  # a variant being built
                time.sleep(min(5.0, float(response.headers.get("Retry-After", "1"))))
                continue
            break
        if response.status_code in (301, 302, 303, 307):
            with (
                httpx.stream("GET", response.headers["Location"], timeout=TRANSFER_TIMEOUT) as stored,
                out.open("wb") as sink,
            ):
                for chunk in stored.iter_bytes():
                    sink.write(chunk)
        else:
            out.write_bytes(response.content)
        return out

    def download_named(self, job_id: str, directory: Path, default_suffix: str = ".csv", **variant: str) -> Path:
        """The result into `directory`, under the file name the API gives it (its Content-Disposition)."""
        params = {"id": job_id, **{k: v for k, v in variant.items() if v}}
        while True:
            response = self._send("GET", "/api/bulk-jobs/download", params=params, follow_redirects=False)
            if response.status_code != 202:  # 202: a variant being built
                break
            time.sleep(min(5.0, float(response.headers.get("Retry-After", "1"))))
        if response.status_code not in (301, 302, 303, 307):
            target = directory / (attachment_name(response.headers) or job_id + default_suffix)
            target.write_bytes(response.content)
            return target
        with httpx.stream("GET", response.headers["Location"], timeout=TRANSFER_TIMEOUT) as stored:
            name = attachment_name(stored.headers) or _name_in_location(response.headers["Location"])
            target = directory / (name or job_id + default_suffix)
            with target.open("wb") as sink:
                for chunk in stored.iter_bytes():
                    sink.write(chunk)
        return target

    # --- inline -----------------------------------------------------------------------------------------------------
    def stream(self, path: str, body: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        """The events of an inline request as they arrive: (`result` | `error` | `done`, data)."""
        try:
            with connect_sse(self.http, "POST", path, json=body, timeout=STREAM_TIMEOUT) as source:
                if source.response.status_code >= 400:
                    source.response.read()
                    raise _error_of(source.response)
                for event in source.iter_sse():
                    if event.data == "[DONE]":
                        return
                    yield event.event, json.loads(event.data)
        except httpx.HTTPError as exc:
            raise ApiError(0, "connection_failed", f"the stream from {self.url} broke: {exc}") from exc

    # --- account ----------------------------------------------------------------------------------------------------
    def credits(self) -> dict[str, Any]:
        """Balance and ledger."""
        return self._json("GET", "/api/credits")

    def webhooks(self) -> list[dict[str, Any]]:
        """The account's webhook endpoints."""
        return list(self._json("GET", "/api/webhooks")["webhooks"])

    def add_webhook(self, url: str, events: list[str] | None, description: str | None) -> dict[str, Any]:
        """Register an endpoint (the answer carries its secret, once)."""
        body: dict[str, Any] = {"url": url}
        if events:
            body["events"] = events
        if description:
            body["description"] = description
        return self._json("POST", "/api/webhooks", json=body)

    def test_webhook(self, webhook_id: str) -> dict[str, Any]:
        """Send a test event now."""
        return self._json("POST", "/api/webhooks/test", json={"id": webhook_id})

    def update_webhook(self, webhook_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change an endpoint's url, events, description or is_active."""
        return self._json("PUT", "/api/webhooks", json={"id": webhook_id, **changes})

    def remove_webhook(self, webhook_id: str) -> dict[str, Any]:
        """Remove an endpoint and its delivery log."""
        return self._json("DELETE", "/api/webhooks", json={"id": webhook_id})

    def deliveries(self, webhook_id: str) -> list[dict[str, Any]]:
        """An endpoint's delivery log."""
        return list(self._json("GET", "/api/webhooks/deliveries", params={"webhook_id": webhook_id})["deliveries"])


def _error_of(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    code = str(body.get("error") or f"http_{response.status_code}")
    message = str(body.get("message") or response.reason_phrase or "the request failed")
    details = {k: v for k, v in body.items() if k not in ("error", "message")}
    return ApiError(response.status_code, code, message, details)


def attachment_name(headers: httpx.Headers) -> str | None:
    """The file name of a `Content-Disposition: attachment; filename=...` (RFC 6266, `filename*` first), made safe to
    write in the current directory; None when there is none."""
    message = email.message.Message()
    message["content-disposition"] = headers.get("content-disposition", "")
    names = [value for key, value in message.get_params([], header="content-disposition") if key == "filename"]
    # `filename*` (RFC 2231, parsed as a tuple) carries the real name; plain `filename` its ASCII stand-in.
    encoded = [email.utils.collapse_rfc2231_value(value) for value in names if isinstance(value, tuple)]
    name = (encoded or [value for value in names if isinstance(value, str)] or [""])[0]
    return _safe_name(name) if name else None


def _name_in_location(location: str) -> str | None:
    """The file name a presigned storage URL asks storage to answer with (`response-content-disposition`)."""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    disposition = (query.get("response-content-disposition") or [""])[0]
    return attachment_name(httpx.Headers({"content-disposition": disposition})) if disposition else None


def _safe_name(name: str) -> str | None:
    """Only the last path part, never `.`/`..` or a hidden file: a server's name cannot write outside the folder."""
    base = PurePosixPath(name.replace("\\", "/")).name.strip()
    return base if base and not base.startswith(".") else None

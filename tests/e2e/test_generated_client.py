"""A client generated from the served document works: `openapi-python-client` builds one from `/api/openapi.json`,
and it drives `bulkapi serve` through a job's life (create by form and by JSON, status, list, downloads as CSV and
JSON Lines, cancel), the credits and the webhooks, parsing every answer into its documented model."""

from __future__ import annotations

import importlib
import io
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests

from tests.e2e.conftest import Server, new_account
from tests.helpers import email_csv, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _generate(server: Server, tmp_path: Path) -> tuple[str, Path]:
    """The package generated from the served document: its import name and folder."""
    doc = tmp_path / "openapi.json"
    doc.write_bytes(requests.get(f"{server.base_url}/api/openapi.json", timeout=30).content)
    name = "bulkapi_generated_" + uuid.uuid4().hex[:8]  # one per test: no module cached from another run
    bin_dir = Path(sys.executable).parent
    run = subprocess.run(
        [
            *(str(bin_dir / "openapi-python-client"), "generate", "--path", str(doc), "--meta", "none"),
            *("--output-path", str(tmp_path / name)),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        # Its post-hooks format the code with the pinned ruff, found on PATH.
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    # Nothing of the document was skipped or misread
    assert "warning" not in (run.stdout + run.stderr).lower(), run.stdout + run.stderr
    return name, tmp_path / name


def _model_classes(package: Path) -> list[str]:
    return sorted(
        m for path in (package / "models").glob("*.py") for m in re.findall(r"^class (\w+)", path.read_text(), re.M)
    )


def test_a_generated_client_drives_a_job_the_credits_and_the_webhooks(server: Server, tmp_path: Path) -> None:
    # Given a client generated from the served document, and an account of its own
    name, package = _generate(server, tmp_path)
    models = _model_classes(package)
    print(f"generated model classes: {len(models)}")
    # One error model for every error answer of every operation (was one per operation and status: 403 classes)
    assert [m for m in models if "Error" in m and m != "ErrorFrame"] == ["ErrorResponse"], models
    assert len(models) < 80, models
    sys.path.insert(0, str(tmp_path))
    try:
        _drive(name, server)
    finally:
        sys.path.remove(str(tmp_path))


def _mod(package: str, path: str) -> ModuleType:
    return importlib.import_module(f"{package}.{path}")


def _drive(name: str, server: Server) -> None:
    account = new_account(server, 100_000)
    gen: Any = _mod(name, "client").AuthenticatedClient(base_url=server.base_url, token=account.key, timeout=60)
    m: Any = _mod(name, "models")
    jobs = {op: _mod(name, f"api.jobs.{op}") for op in ("create_job_api_bulk_jobs_post", "get_job_api_bulk_jobs_get")}
    file_type: Any = _mod(name, "types").File

    # When a job is created from a CSV through the multipart form
    form = m.CreateJobApiBulkJobsPostFilesBody(
        file=file_type(payload=io.BytesIO(email_csv(20)), file_name="leads.csv", mime_type="text/csv"),
        type_=m.CreateJobApiBulkJobsPostFilesBodyType.EMAIL,
    )
    created = jobs["create_job_api_bulk_jobs_post"].sync(client=gen, body=form)
    # Then the answer is the documented model
    assert isinstance(created, m.JobCreatedResponse), created
    # And its status is read with `id` alone (the generated call also sends the documented default `limit`)
    get_job = jobs["get_job_api_bulk_jobs_get"]
    done = wait_for(
        lambda: (s := get_job.sync(client=gen, id=created.id)).status.value == "completed" and s,
        timeout=120,
        interval=0.5,
        what="the job to complete",
    )
    assert isinstance(done, m.JobStatusResponse) and done.processed == 20, done
    # And the account's jobs list it
    listed = get_job.sync(client=gen, limit=5)
    assert isinstance(listed, m.JobListResponse) and created.id in [j.id for j in listed.jobs]

    # When the result is downloaded as CSV and as JSON Lines
    download = _mod(name, "api.jobs.download_api_bulk_jobs_download_get")
    csv_text = download.sync(client=gen, id=created.id)
    # (a variant is built on first ask: 202 with Retry-After, its JSON, until it is ready)
    jsonl_text = wait_for(
        lambda: isinstance(text := download.sync(client=gen, id=created.id, format_="jsonl"), str) and text,
        timeout=60,
        interval=0.5,
        what="the JSON Lines variant",
    )
    # Then each comes back as the file's text (not parsed as JSON)
    assert isinstance(csv_text, str) and len(csv_text.strip().splitlines()) == 21, csv_text[:300]
    assert isinstance(jsonl_text, str) and len(jsonl_text.strip().splitlines()) == 20, jsonl_text[:300]

    # When a job is created with JSON (a presigned upload), then cancelled
    waiting = jobs["create_job_api_bulk_jobs_post"].sync(
        client=gen, body=m.JobCreateRequest(type_="email", filename="later.csv")
    )
    assert isinstance(waiting, m.JobCreatedResponse) and waiting.upload, waiting
    cancelled = _mod(name, "api.jobs.cancel_job_api_bulk_jobs_delete").sync(client=gen, id=waiting.id)
    assert isinstance(cancelled, m.JobStatusResponse | m.JobDeletedResponse), cancelled
    # And an error is the one documented error model, with its code
    missing = get_job.sync(client=gen, id="job_missing")
    assert isinstance(missing, m.ErrorResponse) and missing.code == missing.error == "job_not_found", missing

    # The credits: the job's rows were charged
    credits = _mod(name, "api.credits_.credits_api_credits_get").sync(client=gen)
    assert isinstance(credits, m.CreditsResponse) and credits.balance < 100_000, credits

    # The webhooks: register, list, change, read its deliveries, remove
    hooks = {
        op: _mod(name, f"api.webhooks.{op}")
        for op in (
            "create_webhook_api_webhooks_post",
            "list_webhooks_api_webhooks_get",
            "update_webhook_api_webhooks_put",
            "webhook_deliveries_api_webhooks_deliveries_get",
            "delete_webhook_api_webhooks_delete",
        )
    }
    hook = hooks["create_webhook_api_webhooks_post"].sync(
        client=gen,
        body=m.WebhookCreateRequest(url=server.s3_endpoint + "/"),  # a local address that answers
    )
    assert isinstance(hook, m.WebhookCreatedResponse) and hook.secret, hook
    listed_hooks = hooks["list_webhooks_api_webhooks_get"].sync(client=gen)
    assert isinstance(listed_hooks, m.WebhookListResponse) and [h.id for h in listed_hooks.webhooks] == [hook.id]
    changed = hooks["update_webhook_api_webhooks_put"].sync(
        client=gen, body=m.WebhookUpdateRequest(id=hook.id, description="generated client")
    )
    assert isinstance(changed, m.WebhookResponse) and changed.description == "generated client", changed
    tested = _mod(name, "api.webhooks.test_webhook_api_webhooks_test_post").sync(
        client=gen, body=m.WebhookIdRequest(id=hook.id)
    )
    assert isinstance(tested, m.WebhookTestResponse), tested
    deliveries = hooks["webhook_deliveries_api_webhooks_deliveries_get"].sync(client=gen, webhook_id=hook.id)
    assert isinstance(deliveries, m.DeliveriesResponse), deliveries
    deleted = hooks["delete_webhook_api_webhooks_delete"].sync(client=gen, body=m.WebhookIdRequest(id=hook.id))
    assert isinstance(deleted, m.WebhookDeletedResponse) and deleted.deleted, deleted

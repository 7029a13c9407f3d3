"""An online provider end to end: a darkweb job through `bulkapi serve` with HIBP at a stub, then the cache."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.e2e.conftest import Server, new_account, post_job, start_server, status, stop_server
from tests.helpers import parse_result, wait_for
from tests.unit.test_provider_http import Reply, ScriptedServer, Seen, scripted_server

pytestmark = pytest.mark.e2e

BREACH = {"Name": "Adobe", "BreachDate": "2013-10-04", "DataClasses": ["Email addresses", "Passwords"]}


def hibp(seen: Seen) -> Reply:
    """Addresses with `pwned` are in one breach, `flaky` ones always fail, everyone else is clean."""
    account = unquote(seen.path.rsplit("/", 1)[-1])
    if "flaky" in account:
        return Reply(status=500, body=b"")
    return Reply(body=[BREACH]) if "pwned" in account else Reply(status=404, body=b"")


@pytest.fixture(scope="module")
def stub() -> Iterator[ScriptedServer]:
    """The HIBP stub on 127.0.0.1."""
    with pytest.MonkeyPatch.context() as mp:
        yield from scripted_server(mp)


def hibp_server(tmp: Path, stub: ScriptedServer, **env: str) -> Iterator[Server]:
    """`bulkapi serve` with Have I Been Pwned at the stub, and `env` on top; stopped afterwards."""
    srv = start_server(tmp, BULKAPI_HIBP_API_KEY="stub-key", BULKAPI_HIBP_BASE_URL=stub.url, **env)
    yield srv
    stop_server(srv)


@pytest.fixture(scope="module")
def online_server(tmp_path_factory: pytest.TempPathFactory, stub: ScriptedServer) -> Iterator[Server]:
    """`bulkapi serve` with Have I Been Pwned configured at the stub."""
    yield from hibp_server(tmp_path_factory.mktemp("online"), stub, BULKAPI_HIBP_REQUESTS_PER_MINUTE="60000")


def darkweb_csv() -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(["email"])
    for i in range(30):
        writer.writerow([f"user{i}{'.pwned' if i % 3 == 0 else ''}@example.com"])
    writer.writerows([["USER0.PWNED@example.com"], ["not an address"], ["x.flaky@example.com"]])
    return buf.getvalue().encode()


def run_job(server: Server, key: str, body: bytes) -> tuple[dict[str, object], list[dict[str, str]]]:
    session = server.session(key)
    created = post_job(session, server, body, job_type="darkweb")
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    final = wait_for(
        lambda: (s := status(session, server, job_id))["status"] == "completed" and s, timeout=60, what="job"
    )
    download = session.get(f"{server.base_url}/api/bulk-jobs/download", params={"id": job_id}, timeout=30)
    assert download.status_code == 200
    return final, parse_result(download.content)


def test_darkweb_job_asks_the_provider_once_per_address_then_answers_from_the_cache(
    online_server: Server, stub: ScriptedServer
) -> None:
    stub.respond = hibp
    account = new_account(online_server, credits=1000)
    # When a darkweb job with a duplicate (other case), a malformed value and a failing address runs
    final, rows = run_job(online_server, account.key, darkweb_csv())
    # Then breached and clean addresses are ok, the malformed one invalid, the failing one an error
    by_email = {r["email"]: r for r in rows}
    assert by_email["user0.pwned@example.com"]["breached"] == "true"
    assert by_email["user0.pwned@example.com"]["breaches"] == "Adobe"
    assert by_email["user1@example.com"]["breached"] == "false"
    assert by_email["USER0.PWNED@example.com"]["breach_count"] == "1"
    assert (by_email["not an address"]["status"], by_email["not an address"]["error"]) == (
        "invalid",
        "invalid_darkweb_query",
    )
    assert (by_email["x.flaky@example.com"]["status"], by_email["x.flaky@example.com"]["error"]) == (
        "error",
        "provider_error",
    )
    # And only ok rows are charged, a repeated address once (30 of 33: USER0.PWNED@ is user0.pwned@ again)
    assert (final["succeeded"], final["invalid"], final["failed"], final["credits_used"]) == (31, 1, 1, 30)
    assert by_email["USER0.PWNED@example.com"]["duplicate_of"] != ""
    assert {r["from_cache"] for r in rows if r["status"] == "ok"} == {"false"}
    # And each distinct address was asked once (the failing one with its retries)
    asked = [unquote(s.path.rsplit("/", 1)[-1]) for s in stub.requests]
    assert len([a for a in asked if "flaky" not in a]) == 30 == len({a for a in asked if "flaky" not in a})

    # When the same list runs again
    before = len(stub.requests)
    again, rows_again = run_job(online_server, account.key, darkweb_csv())
    # Then every answered address came from the cache (marked), and the failure is remembered (for 10 minutes):
    # nothing was asked again
    assert {r["from_cache"] for r in rows_again if r["status"] == "ok"} == {"true"}
    assert stub.requests[before:] == []
    assert [r["error"] for r in rows_again if r["status"] == "error"] == ["provider_error"]
    assert [r["breached"] for r in rows_again] == [r["breached"] for r in rows]
    # And cached rows are charged like any ok row (the repeated address once, as in the first job)
    assert again["credits_used"] == 30


@pytest.fixture(scope="module")
def paced_server(tmp_path_factory: pytest.TempPathFactory, stub: ScriptedServer) -> Iterator[Server]:
    """`bulkapi serve` with HIBP at 4 lookups/s and one second per batch turn: a batch needs several turns."""
    yield from hibp_server(
        tmp_path_factory.mktemp("paced"),
        stub,
        BULKAPI_HIBP_REQUESTS_PER_MINUTE="240",
        BULKAPI_PROVIDER_BUDGET_SECONDS="1",
    )


def test_a_rate_limited_provider_paces_the_job_instead_of_failing_rows(
    paced_server: Server, stub: ScriptedServer
) -> None:
    stub.respond = hibp
    account = new_account(paced_server, credits=100)
    before = len(stub.requests)
    body = "email\r\n" + "".join(f"paced{i}{'.pwned' if i % 4 == 0 else ''}@example.com\r\n" for i in range(16))
    # When a 16-row darkweb job runs with time for about four lookups per batch turn
    final, rows = run_job(paced_server, account.key, body.encode())
    # Then every row was answered (the batch came back until all were asked), none timed out, all charged once
    assert [r["status"] for r in rows] == ["ok"] * 16
    assert [r["breached"] for r in rows] == ["true" if i % 4 == 0 else "false" for i in range(16)]
    assert (final["succeeded"], final["failed"], final["credits_used"]) == (16, 0, 16)
    # And each address was asked once
    asked = [unquote(s.path.rsplit("/", 1)[-1]) for s in stub.requests[before:]]
    assert sorted(asked) == sorted(r["email"] for r in rows)

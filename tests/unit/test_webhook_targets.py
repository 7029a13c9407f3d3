"""Where webhooks may go: checked when the endpoint is registered, and what a test send reports back."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from functions.adapters.webhook_http import WebhookHttp
from functions.errors import InputError
from functions.logic import webhook_endpoints
from functions.netguard import resolve_webhook_target
from tests.unit.test_netguard import DNS

RESOLVE = functools.partial(resolve_webhook_target, getaddrinfo=DNS)


def targets(allow_private: bool) -> WebhookHttp:
    """The webhook adapter with the test's DNS answers."""
    return WebhookHttp(allow_private=allow_private, resolve=RESOLVE)


class Endpoints:
    """Endpoint storage in memory."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.log: list[dict[str, Any]] = []

    def put_endpoint(self, account_id: str, endpoint: dict[str, Any]) -> None:
        self.items[endpoint["id"]] = dict(endpoint)

    def get_endpoint(self, account_id: str, endpoint_id: str) -> dict[str, Any] | None:
        found = self.items.get(endpoint_id)
        return dict(found) if found else None

    def list_endpoints(self, account_id: str) -> list[dict[str, Any]]:
        return list(self.items.values())

    def delete_endpoint(self, account_id: str, endpoint_id: str) -> None:
        self.items.pop(endpoint_id, None)

    def deliveries(self, endpoint_id: str, limit: int = 50) -> list[dict[str, Any]]:
        return [d for d in reversed(self.log) if d["webhook_id"] == endpoint_id][:limit]

    def start_delivery(self, delivery: dict[str, Any]) -> bool:
        self.log.append(dict(delivery))
        return True

    def record_attempt(self, delivery: dict[str, Any], attempt: Any, status: str, now: str) -> None:
        for stored in self.log:
            if stored["id"] == delivery["id"]:
                stored.update(status=status, response_status=attempt.status, error=attempt.error)


def register(url: str, *, allow_private: bool) -> dict[str, Any]:
    return webhook_endpoints.create_endpoint(Endpoints(), "acct_a", {"url": url}, targets=targets(allow_private))


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/",
        "https://10.0.0.1/",
        "https://2130706433/",
        "https://0x7f000001/",
        "https://127.1/",
        "https://localhost/",
        "https://internal.example.com/hook",  # resolves to 10.0.0.7
        "https://nowhere.example.com/hook",  # does not resolve
        "http://hooks.example.com/hook",  # not https
    ],
)
def test_deployed_rules_refuse_private_link_local_numeric_and_unresolvable_urls_at_registration(url: str) -> None:
    # Given the deployed rules, when such a URL is registered
    with pytest.raises(InputError) as caught:
        register(url, allow_private=False)

    # Then it is refused at once with the documented code (it was stored with 201, then failed for a day)
    assert caught.value.code == "invalid_webhook_url" and caught.value.status_code == 400


def test_deployed_rules_accept_a_public_https_url() -> None:
    assert register("https://hooks.example.com/hook", allow_private=False)["url"] == "https://hooks.example.com/hook"


@pytest.mark.parametrize(
    "url", ["http://localhost:8391/hook", "http://127.0.0.1:8391/hook", "http://[::1]:8391/hook", "https://localhost/"]
)
def test_locally_the_canonical_loopback_hosts_are_accepted(url: str) -> None:
    assert register(url, allow_private=True)["url"] == url


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433:8391/",
        "http://0x7f000001:8391/",
        "http://127.1:8391/",
        "http://10.0.0.1:8391/",
        "http://[0:0:0:0:0:0:0:1]:8391/",
        "http://internal.example.com/",
        "https://rebind.example.com/",  # a name resolving to loopback is not one of the three
        "http://hooks.example.com/",  # public, but http
        "https://169.254.169.254/",
    ],
)
def test_locally_every_other_private_or_non_canonical_target_is_refused(url: str) -> None:
    with pytest.raises(InputError) as caught:
        register(url, allow_private=True)
    assert caught.value.code == "invalid_webhook_url"


def test_an_update_to_a_private_url_is_refused_too() -> None:
    store = Endpoints()
    hook = webhook_endpoints.create_endpoint(
        store, "acct_a", {"url": "https://hooks.example.com/"}, targets=targets(False)
    )
    with pytest.raises(InputError):
        webhook_endpoints.update_endpoint(
            store, "acct_a", {"id": hook["id"], "url": "https://10.0.0.1/"}, targets=targets(False)
        )
    assert store.items[hook["id"]]["url"] == "https://hooks.example.com/"


@pytest.fixture()
def local_service() -> Iterator[int]:
    """Some other service on this machine, answering with data that is not the caller's (moto's bucket list)."""

    class Service(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b"<ListAllMyBucketsResult><Bucket>secret-bucket</Bucket></ListAllMyBucketsResult>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Service)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield int(httpd.server_address[1])
    httpd.shutdown()
    httpd.server_close()


def test_a_test_send_reports_the_status_but_not_the_body_of_a_loopback_target(local_service: int) -> None:
    # Given (locally) an endpoint registered at another local service's port
    store = Endpoints()
    hook = webhook_endpoints.create_endpoint(
        store, "acct_a", {"url": f"http://127.0.0.1:{local_service}/"}, targets=WebhookHttp(allow_private=True)
    )

    # When a test event is sent to it
    result = webhook_endpoints.send_test(store, "acct_a", hook["id"], targets=WebhookHttp(allow_private=True))

    # Then its answer's status is shown, its text is not
    assert result["response_status"] == 200 and result["success"]
    assert "secret-bucket" not in str(result)


def test_a_test_send_is_in_the_delivery_log_with_what_it_met() -> None:
    # Given an endpoint at a port where nothing listens (a refused connection)
    store = Endpoints()
    hook = webhook_endpoints.create_endpoint(
        store, "acct_a", {"url": "http://127.0.0.1:9/hook"}, targets=WebhookHttp(allow_private=True)
    )
    # When a test event is sent to it
    result = webhook_endpoints.send_test(store, "acct_a", hook["id"], targets=WebhookHttp(allow_private=True))
    # Then the answer says it failed, and the endpoint's log shows that test, failed, with the reason
    assert not result["success"] and result["error"]
    (logged,) = webhook_endpoints.list_deliveries(store, "acct_a", hook["id"])
    assert (logged["id"], logged["event_type"], logged["status"]) == (result["id"], "webhook.test", "failed")
    assert logged["error"] == result["error"]

"""Webhook targets on `bulkapi serve`: only canonical loopback hosts, and no reading other local services."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Server

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433:8391/",
        "http://0x7f000001:8391/",
        "http://127.1:8391/",
        "http://10.0.0.1:8391/",
        "http://169.254.169.254/latest/meta-data/",
    ],
)
def test_private_and_non_canonical_targets_are_refused_locally(server: Server, url: str) -> None:
    # When such a URL is registered (each was accepted locally)
    resp = server.session().post(f"{server.base_url}/api/webhooks", json={"url": url}, timeout=30)

    # Then it is refused with the documented code
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] == "invalid_webhook_url"


def test_a_test_call_to_the_emulation_shows_its_status_but_not_its_data(server: Server) -> None:
    # Given an endpoint registered at the AWS emulation's own address (a canonical loopback host, so allowed)
    session = server.session()
    hook = session.post(f"{server.base_url}/api/webhooks", json={"url": server.s3_endpoint + "/"}, timeout=30)
    assert hook.status_code == 201, hook.text

    # When it is tested
    result = session.post(f"{server.base_url}/api/webhooks/test", json={"id": hook.json()["id"]}, timeout=30).json()

    # Then the reply's status is reported, and nothing of what the emulation answered (it was its bucket list)
    assert result["response_status"] > 0
    assert not result["response_body"] and server.bucket not in str(result)
    session.delete(f"{server.base_url}/api/webhooks", json={"id": hook.json()["id"]}, timeout=30)

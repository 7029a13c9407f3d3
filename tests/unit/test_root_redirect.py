"""`GET /` sends a browser to the console, with no key, at the console's address on that host."""

from __future__ import annotations

from typing import Any

import pytest

from functions.handlers import api
from local.lambdas import LambdaContext
from tests.unit.test_cors import ENV, response_headers

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


def root_event(host: str) -> dict[str, Any]:
    return {
        "resource": "/",
        "path": "/",
        "httpMethod": "GET",
        "headers": {"Host": host},
        "multiValueHeaders": {"Host": [host]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "requestContext": {"requestId": "r", "stage": "prod", "path": "/prod/"},
        "body": None,
        "isBase64Encoded": False,
    }


@pytest.mark.parametrize(
    ("host", "location"),
    [
        # The execute-api address has the stage in its path; a custom domain and bulkapi serve have none
        ("abc123.execute-api.eu-west-1.amazonaws.com", "/prod/console"),
        ("api.example.com", "/console"),
        ("127.0.0.1:8080", "/console"),
    ],
)
def test_the_root_redirects_to_the_console_without_a_key(
    monkeypatch: pytest.MonkeyPatch, host: str, location: str
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    handler = api.lambda_handler.build(ENV)
    answer = handler(root_event(host), LambdaContext("api", 29))
    assert answer["statusCode"] == 302, answer
    assert response_headers(answer)["Location"] == location

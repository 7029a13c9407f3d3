"""CORS on the functions' own answers: an allowed Origin is named back, others get nothing."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from functions.handlers import api, stream
from functions.http import cors
from functions.settings import StreamSettings, load
from local.lambdas import LambdaContext

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

APP = "https://app.example.com"


# Each function's environment, as its template gives it, with one allowed origin.
ENV = {
    "BULKAPI_JOBS_TABLE": "jobs",
    "BULKAPI_BUCKET": "bucket",
    "BULKAPI_FINALIZER_ARN": "arn:aws:states:us-east-1:000000000000:stateMachine:f",
    "BULKAPI_VARIANT_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/000000000000/variants",
    "BULKAPI_FETCH_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/000000000000/fetch",
    "BULKAPI_CORS_ORIGINS": f"{APP}/, https://admin.example.com",
}


def health_event(origin: str | None) -> dict[str, Any]:
    headers = {"Origin": origin} if origin else {}
    return {
        "resource": "/{proxy+}",
        "path": "/api/health",
        "httpMethod": "GET",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": "api/health"},
        "requestContext": {"requestId": "r", "stage": "prod", "path": "/prod/api/health"},
        "body": None,
        "isBase64Encoded": False,
    }


def response_headers(response: dict[str, Any]) -> dict[str, str]:
    single = dict(response.get("headers") or {})
    single.update({k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()})
    return single


def test_allowed_origins_are_named_back_and_others_get_nothing() -> None:
    allowed = cors.allowed_origins(f"{APP}/, https://admin.example.com")
    assert cors.headers_for(APP, allowed)["Access-Control-Allow-Origin"] == APP
    assert cors.headers_for("https://evil.example", allowed) == {}
    assert cors.headers_for(None, allowed) == {}
    assert cors.headers_for(APP, cors.allowed_origins("")) == {}


def test_api_answers_carry_cors_headers_for_an_allowed_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the API composed from its environment (the region is the Lambda runtime's; nothing calls AWS)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    handler = api.lambda_handler.build(ENV)
    # When it answers a page on the allowed origin, and one on another origin
    context = LambdaContext("api", 29)
    allowed = handler(health_event(APP), context)
    other = handler(health_event("https://evil.example"), context)
    # Then the first names the origin (and varies on it), the second carries no CORS header
    assert allowed["statusCode"] == 200
    assert response_headers(allowed)["Access-Control-Allow-Origin"] == APP
    assert response_headers(allowed)["Vary"] == "Origin"
    assert "Access-Control-Allow-Origin" not in response_headers(other)


def test_stream_answers_carry_cors_headers_for_an_allowed_origin() -> None:
    client = TestClient(stream.create_app(stream.Deps.from_settings(load(StreamSettings, ENV))))
    allowed = client.get("/api/health", headers={"Origin": APP})
    other = client.get("/api/health", headers={"Origin": "https://evil.example"})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == APP
    assert "content-disposition" in allowed.headers["access-control-expose-headers"].lower()
    assert "access-control-allow-origin" not in other.headers

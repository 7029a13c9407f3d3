"""The streamed inline routes: explicit resources with STREAM integrations, the stream function behind the Lambda
Web Adapter, and the start script that serves the app in it."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from functions.handlers import stream
from infra.api import STREAMING_ROUTES
from infra.enrichment import stream_provider_budget
from infra.functions import METRICS_NAMESPACE, tracing_environment
from infra.streaming import APP_PORT, READINESS_PATH, START_COMMAND, WEB_ADAPTER_ENVIRONMENT
from infra.web_adapter import WEB_ADAPTER_ACCOUNT, WEB_ADAPTER_LAYER, WEB_ADAPTER_VERSION
from tests.helpers import wait_for
from tests.infra.conftest import Synth

ROOT = Path(__file__).resolve().parents[2]
RUN_SH = ROOT / START_COMMAND


def _stream_function(synth: Synth) -> tuple[str, dict[str, Any]]:
    lid = synth.logical_id(synth.stack.streaming.function)
    return lid, synth.template["Resources"][lid]["Properties"]


def _path_of(synth: Synth, resource_id: Any) -> str:
    """A method's resource path, following ParentId up to the API's root."""
    parts: list[str] = []
    while isinstance(resource_id, dict) and "Ref" in resource_id:
        props = synth.template["Resources"][resource_id["Ref"]]["Properties"]
        parts.insert(0, props["PathPart"])
        resource_id = props["ParentId"]
    assert resource_id["Fn::GetAtt"][1] == "RootResourceId", resource_id
    return "/" + "/".join(parts)


def _post_methods(synth: Synth) -> dict[str, dict[str, Any]]:
    return {
        _path_of(synth, m["Properties"]["ResourceId"]): m["Properties"]
        for m in synth.resources("AWS::ApiGateway::Method").values()
        if m["Properties"]["HttpMethod"] == "POST"
    }


def test_the_streamed_routes_are_exactly_the_apps_routes() -> None:
    assert set(STREAMING_ROUTES) == stream.PATHS


def test_each_streamed_route_is_a_post_streaming_from_the_stream_function(synth: Synth) -> None:
    # Given the POST methods of the API, by resource path
    methods = _post_methods(synth)
    fn_id, fn = _stream_function(synth)

    # Then there is one per streamed route (nothing else is POST-only: the rest goes through ANY /{proxy+})
    assert set(methods) == set(STREAMING_ROUTES)
    for path, props in methods.items():
        integration = props["Integration"]
        # The key authorizer decides (the app reads its account from the Web Adapter's request context header)
        assert props["AuthorizationType"] == "CUSTOM", path
        assert props["AuthorizerId"] == {"Ref": synth.logical_id(synth.stack.authorizer.key_authorizer)}, path
        assert integration["Type"] == "AWS_PROXY" and integration["IntegrationHttpMethod"] == "POST", path
        assert integration["ResponseTransferMode"] == "STREAM", path
        # InvokeWithResponseStream: the 2021-11-15 API and the response-streaming-invocations action
        assert integration["Uri"]["Fn::Join"][1] == [
            "arn:",
            {"Ref": "AWS::Partition"},
            ":apigateway:",
            {"Ref": "AWS::Region"},
            ":lambda:path/2021-11-15/functions/",
            {"Fn::GetAtt": [fn_id, "Arn"]},
            "/response-streaming-invocations",
        ], path
        # A streamed integration may run past 29 s: it is bounded by the function's own timeout
        assert integration["TimeoutInMillis"] == fn["Timeout"] * 1000, path


def test_api_gateway_may_invoke_the_stream_function_only_from_those_methods(synth: Synth) -> None:
    fn_id, _ = _stream_function(synth)
    permissions = [
        p["Properties"]
        for p in synth.resources("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [fn_id, "Arn"]}
    ]
    assert permissions
    scoped: set[str] = set()
    for permission in permissions:
        assert permission["Action"] == "lambda:InvokeFunction"  # also what InvokeWithResponseStream needs
        assert permission["Principal"] == "apigateway.amazonaws.com"
        source = permission["SourceArn"]["Fn::Join"][1]
        assert isinstance(source[-1], str) and "/POST/" in source[-1], source
        scoped.add("/" + source[-1].split("/POST/", 1)[1])
    assert scoped == set(STREAMING_ROUTES)


def test_stream_function_runs_the_app_behind_the_web_adapter(synth: Synth) -> None:
    _, fn = _stream_function(synth)
    table_id = synth.logical_id(synth.stack.storage.table)

    # LWA's bootstrap executes $LAMBDA_TASK_ROOT/$_HANDLER: the start script, where the code asset has it
    assert fn["Handler"] == START_COMMAND == "functions/run.sh"
    assert fn["Timeout"] == 60 and fn["MemorySize"] == 1024
    assert fn["Runtime"] == "python3.12" and fn["Architectures"] == ["arm64"]
    # Exactly: the settings (through the shared factory), the metrics namespace, the adapter's variables
    settings = synth.stack.enrichment.settings(stream_provider_budget(fn["Timeout"]))
    enrichment = {f"BULKAPI_{k.upper()}": v for k, v in synth.stack.resolve(settings).items()}
    assert fn["Environment"]["Variables"] == {
        "BULKAPI_JOBS_TABLE": {"Ref": table_id},
        "BULKAPI_CORS_ORIGINS": ",".join(synth.config.cors_origins),
        **enrichment,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "AWS_LAMBDA_EXEC_WRAPPER": "/opt/bootstrap",
        "AWS_LWA_INVOKE_MODE": "response_stream",
        "AWS_LWA_PORT": str(APP_PORT),
        "AWS_LWA_READINESS_CHECK_PATH": "/api/health",
        **tracing_environment(synth.config.tracing),
    }
    assert WEB_ADAPTER_ENVIRONMENT["AWS_LWA_READINESS_CHECK_PATH"] == READINESS_PATH
    # The dependency layer (starlette, uvicorn), then the adapter for arm64, pinned, in the stack's region
    dependencies = synth.logical_id(synth.stack.node.find_child("Dependencies").node.find_child("Layer"))
    assert fn["Layers"][0] == {"Ref": dependencies}
    # (region-agnostic here: looked up by region at deploy time, tests/infra/test_web_adapter.py)
    assert fn["Layers"][1] == {"Fn::FindInMap": ["WebAdapterLayerByRegion", {"Ref": "AWS::Region"}, "arn"]}
    assert (WEB_ADAPTER_ACCOUNT, WEB_ADAPTER_LAYER) == ("753240598075", "LambdaAdapterLayerArm64")
    assert isinstance(WEB_ADAPTER_VERSION, int)


def _is_executable_by_all(path: Path) -> bool:
    return (path.stat().st_mode & 0o555) == 0o555


def test_start_script_is_executable_in_the_code_asset(synth: Synth) -> None:
    # Given the script in the repository and in the asset CDK staged for the stream function
    _, fn = _stream_function(synth)
    asset = synth.outdir / f"asset.{fn['Code']['S3Key'].removesuffix('.zip')}"
    staged = asset / START_COMMAND

    # Then both are executable (the CLI zips files with their mode) and are POSIX shell scripts with LF endings
    for script in (RUN_SH, staged):
        assert script.is_file() and _is_executable_by_all(script), (script, stat.filemode(script.stat().st_mode))
        text = script.read_bytes()
        assert text.startswith(b"#!/bin/sh\n") and b"\r" not in text, script
    assert staged.read_bytes() == RUN_SH.read_bytes()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def started_script(tmp_path: Path) -> Iterator[str]:
    """functions/run.sh started as LWA starts it: from elsewhere, with Lambda's variables; yields its base URL."""
    port = _free_port()
    env = {
        # This interpreter stands in for the runtime's `python`; no /opt/python here, the venv has the dependencies.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "LAMBDA_TASK_ROOT": str(ROOT),
        "AWS_LWA_PORT": str(port),
        "AWS_DEFAULT_REGION": "us-east-1",
        "BULKAPI_JOBS_TABLE": "jobs",
    }
    log = (tmp_path / "run.log").open("w+")
    proc = subprocess.Popen([str(RUN_SH)], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def test_start_script_serves_the_app_where_the_web_adapter_looks(started_script: str) -> None:
    def health() -> requests.Response | None:
        try:
            return requests.get(started_script + READINESS_PATH, timeout=2)
        except requests.ConnectionError:
            return None

    # When the adapter's readiness check polls the app's port
    ready = wait_for(health, timeout=30, what="run.sh to serve the readiness path")

    # Then the app answers it without a key, and a streamed route answers in the project's error shape
    assert ready.status_code == 200
    resp = requests.post(started_script + STREAMING_ROUTES[0], json={"emails": ["a@example.com"]}, timeout=5)
    assert resp.status_code == 401 and resp.json()["error"] == "unauthorized"

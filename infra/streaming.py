"""The inline Server-Sent-Events routes, streamed: API Gateway REST response streaming -> the stream function.

A Python Lambda cannot stream a response by itself, so the stream function runs the ASGI app
`functions.handlers.stream:app` under uvicorn (`functions/run.sh`) behind the Lambda Web Adapter (LWA), and API Gateway
invokes it with InvokeWithResponseStream. Each path of `STREAMING_ROUTES` gets an explicit resource: API Gateway routes
a request to the most specific resource that has a method for it, so POST on these paths reaches the stream function
and everything else (other paths, other methods, the intermediate `/api`) still falls through to `{proxy+}` and the api
function. See infra/STREAMING.md.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from constructs import Construct

from infra.api import STREAMING_ROUTES, resource_for
from infra.enrichment import EnrichmentConstruct, stream_provider_budget
from infra.functions import FunctionFactory
from infra.storage import StorageConstruct
from infra.web_adapter import web_adapter_layer

# The Lambda handler: LWA's /opt/bootstrap executes $LAMBDA_TASK_ROOT/$_HANDLER, and the code asset holds the
# `functions` package at its root, so the start script is at functions/run.sh.
START_COMMAND = "functions/run.sh"
APP_PORT = 8080
READINESS_PATH = "/api/health"
WEB_ADAPTER_ENVIRONMENT = {
    "AWS_LAMBDA_EXEC_WRAPPER": "/opt/bootstrap",
    "AWS_LWA_INVOKE_MODE": "response_stream",
    "AWS_LWA_PORT": str(APP_PORT),
    "AWS_LWA_READINESS_CHECK_PATH": READINESS_PATH,
}
# 1,000 offline e-mails take well under a second; provider-backed searches take longer. A streamed REST response may
# last 15 minutes; the integration timeout bounds the stream, so it equals the function's.
TIMEOUT = Duration.seconds(60)
# CPU scales with memory, and enrichment is CPU-bound.
MEMORY_MB = 1024


class StreamingConstruct(Construct):
    """The stream function (uvicorn behind the Lambda Web Adapter) and a streamed POST method per inline route."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: FunctionFactory,
        storage: StorageConstruct,
        enrichment: EnrichmentConstruct,
        rest_api: apigw.RestApi,
        cors_origins: str = "",
        web_adapter_layer_arn: str | None = None,
        reserved_concurrency: int | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = functions.make(
            self,
            "Handler",
            handler="stream",
            # Never `local_enrich_delay_ms`: a test hook of the local e2e tests.
            env={
                **storage.environment(bucket=False),
                "cors_origins": cors_origins,
                **enrichment.settings(stream_provider_budget(TIMEOUT.to_seconds())),
            },
            timeout=TIMEOUT,
            memory=MEMORY_MB,
            entry=START_COMMAND,
            runtime_env=WEB_ADAPTER_ENVIRONMENT,
            extra_layers=[web_adapter_layer(self, web_adapter_layer_arn)],
            reserved_concurrency=reserved_concurrency,
        )
        # `account_for_key` and `account_credits` read items; the charge is a conditional UpdateItem; an
        # Idempotency-Key record is put at the start, updated with the answer, or deleted when not completed.
        storage.grant_jobs(self.function, "GetItem", "UpdateItem", "PutItem", "DeleteItem")
        enrichment.grant(self.function)
        integration = apigw.LambdaIntegration(
            self.function, response_transfer_mode=apigw.ResponseTransferMode.STREAM, timeout=TIMEOUT
        )
        self.methods = [resource_for(rest_api.root, path).add_method("POST", integration) for path in STREAMING_ROUTES]

"""The REST API: API Gateway -> the api function (Powertools resolver), every route but the streamed ones proxied.

Authentication is API Gateway's: every method but the public routes has a Lambda REQUEST authorizer
(infra/api_access.py), which passes `requestContext.authorizer.account_id` to the functions
(functions/http/access.py); the public routes (health, docs, the OpenAPI document, the console, `/` that
redirects to it) go to the api function with no authorizer.

Request size: API Gateway accepts at most 10 MB; the function enforces `max_upload_bytes` per file. Note that a
Lambda proxy invocation carries at most 6 MB and binary bodies arrive base64-encoded (4/3 larger), see
`MAX_PROXY_UPLOAD_BYTES`.

The Server-Sent-Events routes below (STREAMING_ROUTES) are not served by the api function: infra/streaming.py adds
an explicit resource for each, with a POST method whose integration streams the response (`ResponseTransferMode:
STREAM`) from the stream function (the ASGI app behind the Lambda Web Adapter); see infra/STREAMING.md.
"""

from __future__ import annotations

import json
from typing import cast

from aws_cdk import Annotations, Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from functions.http.access import PUBLIC_ROUTES
from infra.api_access import AuthorizerConstruct
from infra.config import StackConfig
from infra.functions import FunctionFactory, retention
from infra.nag import acknowledge, resource_of
from infra.storage import RETAINED, StorageConstruct

STREAMING_ROUTES = (
    "/api/bulk-lookup",
    "/api/agent/bulk-lookup",
    "/api/bulk-google-search",
    "/api/bulk-company-search",
    "/api/bulk-domain-search",
    "/api/bulk-ip-search",
)
# A synchronous Lambda invocation carries at most 6 MB (6,291,456 bytes) of event; API Gateway base64-encodes
# binary bodies (multipart/form-data), so the largest upload that reaches the function is about 3/4 of that,
# less the event's headers and multipart framing.
MAX_PROXY_UPLOAD_BYTES = 6_291_456 * 3 // 4 - 64 * 1024
# What one line of the stage's access log carries (JSON): who (the account the authorizer named, the client IP),
# what (method, route, status, size), how long (the gateway's, the integration's and the authorizer's latency) and
# why it failed (the gateway's error message and type, the integration's error). No bodies, no headers, no keys.
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "requestTime": "$context.requestTime",
    "ip": "$context.identity.sourceIp",
    "account": "$context.authorizer.principalId",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "protocol": "$context.protocol",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integration.latency",
    "authorizerLatency": "$context.authorizer.latency",
    "error": "$context.error.message",
    "errorType": "$context.error.responseType",
    "integrationError": "$context.integration.error",
    "wafResponseCode": "$context.wafResponseCode",
}
COGNITO_REASON = (
    "Authorized by the API's Lambda REQUEST authorizer (hashed API keys in the jobs table); "
    "bulkapi has API keys, not Cognito users, so a Cognito user pool authorizer has nothing to check."
)


def resource_for(root: apigw.IResource, path: str) -> apigw.IResource:
    """The resource of `path` under the API's root, created where missing.

    A proxying LambdaRestApi forbids `root.add_resource`, so the first level is built as a `Resource` directly;
    deeper levels are ordinary child resources.
    """
    first, *rest = path.strip("/").split("/")
    # The root resource is a construct (typed only as IResource): scoped there, as `add_resource` would do it.
    scope = cast(Construct, root)
    top = root.get_resource(first) or apigw.Resource(scope, first, parent=root, path_part=first)
    return top.resource_for_path("/".join(rest)) if rest else top


def acknowledge_cognito(rest_api: apigw.RestApi) -> None:
    """COG4 on every method that has a Lambda authorizer: cdk-nag's COG4 accepts only Cognito user pools."""
    for method in rest_api.methods:
        cfn = resource_of(method)
        if method.http_method != "OPTIONS" and isinstance(cfn, apigw.CfnMethod) and cfn.authorization_type == "CUSTOM":
            acknowledge(cfn, "AwsSolutions-COG4", COGNITO_REASON)


class ApiConstruct(Construct):
    """REST API with stage throttling, access logs and optional CORS; `{proxy+}` goes to the api function."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        functions: FunctionFactory,
        storage: StorageConstruct,
        state_machine: sfn.IStateMachine,
        authorizer: AuthorizerConstruct,
        variant_queue: sqs.IQueue,
        fetch_queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = functions.make(
            self,
            "Handler",
            handler="api",
            env={
                **storage.environment(state_machine),
                "max_rows_per_job": str(config.max_rows_per_job),
                "max_upload_bytes": str(config.max_upload_bytes),
                "max_upload_object_bytes": str(config.max_upload_object_bytes),
                "upload_url_ttl_seconds": str(config.upload_url_ttl_seconds),
                "fetch_queue_url": fetch_queue.queue_url,
                "cors_origins": ",".join(config.cors_origins),
                "retention_days": str(config.retention_days),
                "variant_queue_url": variant_queue.queue_url,
            },
            # API Gateway's integration timeout is 29 s.
            timeout=Duration.seconds(29),
            memory=1024,
            reserved_concurrency=config.api_reserved_concurrency,
        )
        if config.max_upload_bytes > MAX_PROXY_UPLOAD_BYTES:
            Annotations.of(self).add_warning_v2(
                "bulkapi:upload-limit",
                f"max_upload_bytes={config.max_upload_bytes} exceeds what a Lambda proxy invocation can carry "
                f"base64-encoded (~{MAX_PROXY_UPLOAD_BYTES} bytes): larger uploads fail in API Gateway, not with "
                "the project's 413 body. Lower bulkapi:maxUploadBytes or upload through a presigned URL.",
            )
        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=retention(config.log_retention_days), removal_policy=RETAINED
        )
        cors = (
            apigw.CorsOptions(
                allow_origins=config.cors_origins,
                allow_methods=apigw.Cors.ALL_METHODS,
                allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
                max_age=Duration.hours(1),
            )
            if config.cors_origins
            else None
        )
        self.rest_api = apigw.LambdaRestApi(
            self,
            "RestApi",
            handler=self.function,
            proxy=True,
            # Stage-specific, so two stages' APIs are told apart in the console (the stack names differ too).
            rest_api_name=f"bulkapi-{config.stage}",
            description=f"bulkapi ({config.stage})",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            binary_media_types=["multipart/form-data", "text/csv"],
            default_cors_preflight_options=cors,
            # Every method needs a key unless it says otherwise (the public routes below); the usage plan meters
            # the key the authorizer names (usageIdentifierKey), never one a client sends.
            default_method_options=authorizer.protected,
            api_key_source_type=apigw.ApiKeySourceType.AUTHORIZER,
            # Not AWS::ApiGateway::Account: that is one setting per account and region, which this stack would
            # overwrite on deploy and leave pointing at a deleted role on destroy. The account's API Gateway
            # CloudWatch role is set once, outside any stack (README "What you need"); stage logging needs it.
            cloud_watch_role=False,
            deploy_options=apigw.StageOptions(
                stage_name=config.stage,
                throttling_rate_limit=config.api_rate_limit,
                throttling_burst_limit=config.api_burst_limit,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FIELDS)),
                # Execution logs for errors only, never bodies: requests carry customers' e-mails and files.
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                metrics_enabled=True,
                tracing_enabled=config.tracing,
            ),
        )
        # The public routes invoke no authorizer: API Gateway sends them straight to the api function, which
        # needs no account for them (a Lambda here would cost an invocation per health check and decide nothing).
        public = apigw.LambdaIntegration(self.function)
        self.public_methods = [
            resource_for(self.rest_api.root, path).add_method(
                "GET", public, authorization_type=apigw.AuthorizationType.NONE, api_key_required=False
            )
            for path in PUBLIC_ROUTES
            if path != "/"
        ]
        # `GET /` (a redirect to the console): a proxying LambdaRestApi forbids `root.add_method`, so the method is
        # built directly; it takes precedence over the root's keyed ANY.
        self.public_methods.append(
            apigw.Method(
                self,
                "RootGet",
                resource=self.rest_api.root,
                http_method="GET",
                integration=public,
                options=apigw.MethodOptions(authorization_type=apigw.AuthorizationType.NONE, api_key_required=False),
            )
        )
        for method in self.public_methods:
            for rule in ("AwsSolutions-APIG4", "AwsSolutions-COG4"):
                acknowledge(
                    resource_of(method),
                    rule,
                    f"{method.resource.path} is public by design (health check, API docs, the OpenAPI document, the "
                    "web console page): it reads no account's data, and every other method has the key authorizer.",
                )
        self.usage_plan = authorizer.limit(self.rest_api, config)
        self._acknowledge(waf=config.waf_enabled)
        # Creates jobs (uploads/; a presigned POST form is signed with this role, so it needs PutObject there too),
        # serves results (presigned GET on results/), cancels or purges, starts the finalizer
        # of a cancelled job. In the table: jobs and credits (transactions of Put/Update), the ledger and
        # webhook endpoints (Query on the key, DeleteItem when an endpoint is removed), Idempotency-Key records
        # (Powertools deletes a record whose request failed), job lists through the by_account index.
        # DELETE of an ended job purges its files, every version (the bucket is versioned): the upload or drop,
        # its parts, its result and the result's variants. Every delete names a version (DeleteObjects with VersionId),
        # which needs s3:DeleteObjectVersion only (`bulkapi iam-report`: s3:DeleteObject was never used).
        purge = ("DeleteObjectVersion",)
        storage.grant_objects(self.function, "uploads/", "PutObject", *purge)
        storage.grant_objects(self.function, "results/", "GetObject", *purge)
        storage.grant_objects(self.function, "parts/", *purge)
        storage.grant_objects(self.function, "drop/", *purge)
        storage.grant_list_versions(self.function, "uploads/", "results/", "parts/", "drop/")
        storage.grant_jobs(
            self.function, "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", query_by_account=True
        )
        state_machine.grant_start_execution(self.function)
        # A download of a result variant that does not exist yet asks the variants function to build it.
        variant_queue.grant(self.function, "sqs:SendMessage")
        # A job from a URL: its fetch is queued for the fetcher (infra/fetch.py).
        fetch_queue.grant(self.function, "sqs:SendMessage")

    @property
    def url(self) -> str:
        """The stage's base URL."""
        return self.rest_api.url

    def _acknowledge(self, *, waf: bool) -> None:
        acknowledge(
            resource_of(self.rest_api),
            "AwsSolutions-APIG2",
            "Every route is a proxy to the api function, which validates each body with pydantic and answers 4xx "
            "in the project's error shape; an API Gateway model would duplicate it with another error shape.",
        )
        if not waf:
            acknowledge(
                resource_of(self.rest_api.deployment_stage),
                "AwsSolutions-APIG3",
                "WAF is off for this non-production stage (bulkapi:waf=false or a stage that is not production): "
                "a web ACL costs per month and per request; keys are checked by the authorizer and each account is "
                "throttled by its plan. Production stages get WAF by default.",
            )

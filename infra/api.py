"""The REST API: API Gateway -> the api function (Powertools resolver), every route but the streamed ones proxied.

Authentication is the function's job: it hashes the `Authorization: Bearer <key>` value and looks the hash up in
the jobs table (KEY#<sha256>), so an unknown key gets the project's own 401 body. That replaces a Lambda
authorizer, which would cost a second invocation per request (or a cache keyed on the raw token) and answer
401s in API Gateway's shape instead of `{"error", "message"}`.

Request size: API Gateway accepts at most 10 MB; the function enforces `max_upload_bytes` per file. Note that a
Lambda proxy invocation carries at most 6 MB and binary bodies arrive base64-encoded (4/3 larger), see
`MAX_PROXY_UPLOAD_BYTES`.

The Server-Sent-Events routes below (STREAMING_ROUTES) are not served by the api function: infra/streaming.py adds
an explicit resource for each, with a POST method whose integration streams the response (`ResponseTransferMode:
STREAM`) from the stream function (the ASGI app behind the Lambda Web Adapter); see infra/STREAMING.md.
"""

from __future__ import annotations

from aws_cdk import Annotations, Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import StackConfig
from infra.functions import FunctionFactory, retention
from infra.nag import acknowledge, resource_of
from infra.storage import StorageConstruct

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
AUTH_REASON = (
    "The api function authenticates every request itself: it hashes the Authorization Bearer key and looks the "
    "hash up in the jobs table, answering 401 in the project's error shape; no Cognito users exist."
)


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
        variant_queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = functions.make(
            self,
            "Handler",
            handler="api",
            env={
                "jobs_table": storage.table.table_name,
                "bucket": storage.bucket.bucket_name,
                "finalizer_arn": state_machine.state_machine_arn,
                "max_rows_per_job": str(config.max_rows_per_job),
                "max_upload_bytes": str(config.max_upload_bytes),
                "cors_origins": ",".join(config.cors_origins),
                "retention_days": str(config.retention_days),
                "variant_queue_url": variant_queue.queue_url,
            },
            # API Gateway's integration timeout is 29 s.
            timeout=Duration.seconds(29),
            memory=1024,
        )
        if config.max_upload_bytes > MAX_PROXY_UPLOAD_BYTES:
            Annotations.of(self).add_warning_v2(
                "bulkapi:upload-limit",
                f"max_upload_bytes={config.max_upload_bytes} exceeds what a Lambda proxy invocation can carry "
                f"base64-encoded (~{MAX_PROXY_UPLOAD_BYTES} bytes): larger uploads fail in API Gateway, not with "
                "the project's 413 body. Lower bulkapi:maxUploadBytes or upload through a presigned URL.",
            )
        self.access_logs = logs.LogGroup(self, "AccessLogs", retention=retention(config.log_retention_days))
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
            description=f"bulkapi ({config.stage})",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            binary_media_types=["multipart/form-data", "text/csv"],
            default_cors_preflight_options=cors,
            deploy_options=apigw.StageOptions(
                stage_name=config.stage,
                throttling_rate_limit=config.api_rate_limit,
                throttling_burst_limit=config.api_burst_limit,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=False,
                ),
                # Execution logs for errors only, never bodies: requests carry customers' e-mails and files.
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                metrics_enabled=True,
                tracing_enabled=True,
            ),
        )
        self._acknowledge()
        # Creates jobs (uploads/), serves results (presigned GET on results/), cancels or purges, starts the finalizer
        # of a cancelled job. In the table: jobs and credits (transactions of Put/Update), the ledger and
        # webhook endpoints (Query on the key, DeleteItem when an endpoint is removed), Idempotency-Key records
        # (Powertools deletes a record whose request failed), job lists through the by_account index.
        # DELETE of an ended job purges its files, every version (the bucket is versioned): the upload or drop,
        # its parts, its result and the result's variants.
        purge = ("DeleteObject", "DeleteObjectVersion")
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
        variant_queue.grant_send_messages(self.function)

    @property
    def url(self) -> str:
        """The stage's base URL."""
        return self.rest_api.url

    def _acknowledge(self) -> None:
        for method in self.rest_api.methods:
            # Preflight OPTIONS (only with CORS) must answer without credentials; the rest authenticate in the function.
            reason = (
                "CORS preflight: browsers send OPTIONS without credentials, and the mock integration returns only "
                "CORS headers."
                if method.http_method == "OPTIONS"
                else AUTH_REASON
            )
            acknowledge(resource_of(method), "AwsSolutions-APIG4", reason)
            acknowledge(resource_of(method), "AwsSolutions-COG4", reason)
        acknowledge(
            resource_of(self.rest_api),
            "AwsSolutions-APIG2",
            "Every route is a proxy to the api function, which validates each body with pydantic and answers 4xx "
            "in the project's error shape; an API Gateway model would duplicate it with another error shape.",
        )
        acknowledge(
            resource_of(self.rest_api.deployment_stage),
            "AwsSolutions-APIG3",
            "WAF is an operator decision (a web ACL costs per month and per request): keys are checked per request "
            "and the stage is throttled; associate a regional web ACL with the stage to add one.",
        )
        # API Gateway's account-level CloudWatch role (the stage's logs need it); CDK creates it with the API.
        cloudwatch_role = self.rest_api.node.try_find_child("CloudWatchRole")
        if cloudwatch_role is not None:
            partition_policy = "arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
            acknowledge(
                resource_of(cloudwatch_role),
                f"AwsSolutions-IAM4[Policy::{partition_policy}]",
                "The account-level role API Gateway needs to write access and execution logs; this AWS managed "
                "policy is the one AWS documents for it and grants only CloudWatch Logs writes.",
            )

"""The REST API: API Gateway -> the api function (Powertools resolver)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from functions.settings import ApiSettings
from infra.config import StackConfig
from infra.functions import make_function
from infra.storage import StorageConstruct


class ApiConstruct(Construct):
    """REST API with stage throttling and access logs; every route proxies to one function."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: StackConfig, storage: StorageConstruct,
        state_machine: sfn.IStateMachine,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = make_function(
            self,
            "Api",
            handler="api",
            settings=ApiSettings,
            env={
                "jobs_table": storage.table.table_name,
                "bucket": storage.bucket.bucket_name,
                "finalizer_arn": state_machine.state_machine_arn,
                "max_rows_per_job": str(config.max_rows_per_job),
                "max_upload_bytes": str(config.max_upload_bytes),
            },
            timeout=Duration.seconds(29),
            memory=1024,
            log_retention_days=config.log_retention_days,
        )
        access_logs = logs.LogGroup(self, "AccessLogs", retention=logs.RetentionDays.ONE_MONTH)
        self.rest_api = apigw.LambdaRestApi(
            self,
            "RestApi",
            handler=self.function,
            proxy=True,
            binary_media_types=["multipart/form-data", "text/csv"],
            deploy_options=apigw.StageOptions(
                stage_name=config.stage,
                throttling_rate_limit=50,
                throttling_burst_limit=100,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False, http_method=True, ip=True, protocol=True, request_time=True,
                    resource_path=True, response_length=True, status=True, user=False,
                ),
                tracing_enabled=True,
            ),
        )
        storage.table.grant_read_write_data(self.function)
        storage.bucket.grant_read_write(self.function)
        state_machine.grant_start_execution(self.function)

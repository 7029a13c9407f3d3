"""The finalizer: a Standard state machine (JSONPath) whose tasks are the finalizer function's actions.

Assemble -> Complete; any failure that survives the retries goes to MarkFailed, which ends the job `failed`
and still publishes its event. The local runtime executes this very definition (see local/resources.py).
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.config import StackConfig
from infra.functions import FunctionFactory, retention
from infra.nag import acknowledge, policy_of
from infra.storage import StorageConstruct


def _task(
    scope: Construct, name: str, fn: lambda_.IFunction, payload: dict[str, object], result_path: str
) -> tasks.LambdaInvoke:
    return tasks.LambdaInvoke(
        scope,
        name,
        lambda_function=fn,
        payload=sfn.TaskInput.from_object(payload),
        payload_response_only=True,
        result_path=result_path,
        retry_on_service_exceptions=True,
    )


class FinalizerConstruct(Construct):
    """The finalizer function and its state machine (execution name = job id, so it runs once per job)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        functions: FunctionFactory,
        storage: StorageConstruct,
        bus: events.IEventBus,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = functions.make(
            self,
            "Finalizer",
            handler="finalizer",
            env={
                "jobs_table": storage.table.table_name,
                "bucket": storage.bucket.bucket_name,
                "event_bus_name": bus.event_bus_name,
            },
            timeout=Duration.minutes(15),
            # 1,769 MB is one full vCPU: assembling streams and re-uploads every part.
            memory=1769,
        )
        job_id = sfn.JsonPath.string_at("$.job_id")
        assemble = _task(self, "Assemble", self.function, {"action": "assemble", "job_id": job_id}, "$.assembled")
        complete = _task(self, "Complete", self.function, {"action": "complete", "job_id": job_id}, "$.completed")
        mark_failed = _task(
            self,
            "MarkFailed",
            self.function,
            {"action": "fail", "job_id": job_id, "error": sfn.JsonPath.object_at("$.error")},
            "$.failed",
        )
        for task in (assemble, complete):
            task.add_retry(errors=["States.ALL"], max_attempts=3, interval=Duration.seconds(2), backoff_rate=2)
            task.add_catch(mark_failed, errors=["States.ALL"], result_path="$.error")
        mark_failed.add_retry(errors=["States.ALL"], max_attempts=5, interval=Duration.seconds(2), backoff_rate=2)
        failed = sfn.Fail(self, "JobFailed", error="JobFailed", cause="the job could not be finalized")
        definition = assemble.next(complete).next(sfn.Succeed(self, "Done"))
        mark_failed.next(failed)
        log_group = logs.LogGroup(
            self,
            "StateMachineLogs",
            retention=retention(config.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            state_machine_type=sfn.StateMachineType.STANDARD,
            timeout=Duration.hours(1),
            tracing_enabled=True,
            # ALL: a few states per job, and the execution history of a failed job is what an operator reads first.
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
        )
        function_id = Stack.of(self).get_logical_id(self.function.node.default_child)  # type: ignore[arg-type]
        acknowledge(
            policy_of(self.state_machine.role),
            f"AwsSolutions-IAM5[Resource::<{function_id}.Arn>:*]",
            "LambdaInvoke grants the finalizer function and its versions/aliases (arn:*); no other function.",
        )
        acknowledge(
            policy_of(self.state_machine.role),
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray tracing (xray:PutTraceSegments) and CloudWatch Logs delivery (logs:CreateLogDelivery and friends) "
            "support no resource-level scope.",
        )
        # Assemble reads the parts and writes results/ (multipart when large, aborted on failure);
        # Complete/MarkFailed move the job, settle credits and publish bulk_job.* events.
        # The result is an S3 multipart upload built from the part files (UploadPartCopy for large ones); once the
        # job has ended its part files are deleted for good, every version (the bucket is versioned: it reads that
        # once, then ListBucketVersions under parts/ only).
        storage.grant_objects(self.function, "parts/", "GetObject", "DeleteObject", "DeleteObjectVersion")
        storage.grant_objects(self.function, "results/", "GetObject", "PutObject", "AbortMultipartUpload")
        storage.grant_list_versions(self.function, "parts/")
        storage.grant_bucket(self.function, "GetBucketVersioning")
        storage.grant_jobs(self.function, "GetItem", "PutItem", "UpdateItem")
        bus.grant_put_events_to(self.function)

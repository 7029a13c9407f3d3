"""The finalizer: a Standard state machine (JSONPath) whose tasks are the finalizer function's actions.

Assemble -> Complete; any failure that survives the retries goes to MarkFailed, which ends the job `failed`
and still publishes its event. The local runtime executes this very definition (see local/resources.py).
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from functions.settings import FinalizerSettings
from infra.config import StackConfig
from infra.functions import make_function
from infra.storage import StorageConstruct


def _task(scope: Construct, name: str, fn: object, payload: dict[str, object], result_path: str) -> tasks.LambdaInvoke:
    return tasks.LambdaInvoke(
        scope,
        name,
        lambda_function=fn,  # type: ignore[arg-type]
        payload=sfn.TaskInput.from_object(payload),
        payload_response_only=True,
        result_path=result_path,
        retry_on_service_exceptions=True,
    )


class FinalizerConstruct(Construct):
    """The finalizer function and its state machine (execution name = job id, so it runs once per job)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: StackConfig, storage: StorageConstruct, bus_name: str
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = make_function(
            self,
            "Finalizer",
            handler="finalizer",
            settings=FinalizerSettings,
            env={"jobs_table": storage.table.table_name, "bucket": storage.bucket.bucket_name, "event_bus_name": bus_name},
            timeout=Duration.minutes(15),
            memory=1769,
            log_retention_days=config.log_retention_days,
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
            self, "StateMachineLogs", retention=logs.RetentionDays.ONE_MONTH, removal_policy=RemovalPolicy.DESTROY
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            state_machine_type=sfn.StateMachineType.STANDARD,
            timeout=Duration.hours(1),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ERROR),
        )
        storage.table.grant_read_write_data(self.function)
        storage.bucket.grant_read_write(self.function)

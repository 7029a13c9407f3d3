"""The finalizer: a Standard state machine (JSONPath) whose tasks are the finalizer function's actions.

Assemble -> Complete; any failure that survives the retries goes to MarkFailed, which ends the job `failed`
and still publishes its event; the execution then succeeds (JobMarkedFailed), so a failed execution means the
finalizer itself broke. The local runtime executes this very definition (see local/resources.py).

Time budget: every task has its own timeout and one retrier (States.ALL, which also matches States.Timeout and the
Lambda service errors), so the longest run is a sum the synth checks: Assemble retried to its last attempt, then
Complete failing every attempt, then MarkFailed retried to its last attempt, all inside the machine's timeout. Before,
the tasks had no timeout (each attempt could take the function's 15 min: 4 x 900 s already filled the hour) and
MarkFailed never got to run.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.config import StackConfig
from infra.functions import FunctionFactory, retention
from infra.nag import acknowledge, policy_of, resource_of
from infra.storage import StorageConstruct

# Assembling streams every part file and re-uploads them: the function may take its whole timeout.
FUNCTION_TIMEOUT = Duration.minutes(15)
MACHINE_TIMEOUT = Duration.hours(1)
RETRY_INTERVAL_SECONDS = 2
BACKOFF_RATE = 2.0


@dataclass(frozen=True)
class TaskPolicy:
    """How long one attempt of a task may take and how often it is retried."""

    timeout_seconds: int
    retries: int

    def worst_case_seconds(self) -> float:
        """Every attempt running to its timeout, plus the backoff waits between them."""
        waits = sum(RETRY_INTERVAL_SECONDS * BACKOFF_RATE**i for i in range(self.retries))
        return (self.retries + 1) * self.timeout_seconds + waits


# A task's timeout is a little over the function's, so the function's own timeout (an error the retrier sees) fires
# first and no retry overlaps a still-running attempt. Complete and MarkFailed are short, idempotent updates.
ASSEMBLE = TaskPolicy(timeout_seconds=int(FUNCTION_TIMEOUT.to_seconds()) + 30, retries=1)
COMPLETE = TaskPolicy(timeout_seconds=120, retries=3)
MARK_FAILED = TaskPolicy(timeout_seconds=120, retries=5)


def worst_case_seconds() -> float:
    """The longest execution: Assemble succeeds last try, Complete fails every try, MarkFailed works last try."""
    return ASSEMBLE.worst_case_seconds() + COMPLETE.worst_case_seconds() + MARK_FAILED.worst_case_seconds()


def _task(
    scope: Construct,
    name: str,
    fn: lambda_.IFunction,
    payload: dict[str, object],
    result_path: str,
    policy: TaskPolicy,
) -> tasks.LambdaInvoke:
    task = tasks.LambdaInvoke(
        scope,
        name,
        lambda_function=fn,
        payload=sfn.TaskInput.from_object(payload),
        payload_response_only=True,
        result_path=result_path,
        task_timeout=sfn.Timeout.duration(Duration.seconds(policy.timeout_seconds)),
        # One retrier per task (below) so the worst case is countable: States.ALL covers the service errors too.
        retry_on_service_exceptions=False,
    )
    task.add_retry(
        errors=["States.ALL"],
        max_attempts=policy.retries,
        interval=Duration.seconds(RETRY_INTERVAL_SECONDS),
        backoff_rate=BACKOFF_RATE,
    )
    return task


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
            timeout=FUNCTION_TIMEOUT,
            # 1,769 MB is one full vCPU: assembling streams and re-uploads every part.
            memory=1769,
        )
        if worst_case_seconds() >= MACHINE_TIMEOUT.to_seconds():
            raise ValueError(
                f"finalizer tasks may run {worst_case_seconds():.0f} s, not inside the machine's "
                f"{MACHINE_TIMEOUT.to_seconds():.0f} s: MarkFailed would never run"
            )
        job_id = sfn.JsonPath.string_at("$.job_id")
        fn = self.function
        assemble = _task(self, "Assemble", fn, {"action": "assemble", "job_id": job_id}, "$.assembled", ASSEMBLE)
        complete = _task(self, "Complete", fn, {"action": "complete", "job_id": job_id}, "$.completed", COMPLETE)
        mark_failed = _task(
            self,
            "MarkFailed",
            fn,
            {"action": "fail", "job_id": job_id, "error": sfn.JsonPath.object_at("$.error")},
            "$.failed",
            MARK_FAILED,
        )
        for task in (assemble, complete):
            task.add_catch(mark_failed, errors=["States.ALL"], result_path="$.error")
        # A job marked failed is a clean end: the execution succeeds, so the state machine's ExecutionsFailed (the
        # FinalizerFailed alarm) counts only executions where the finalizer itself broke, MarkFailed included. A
        # customer's bad file or empty balance pages nobody; the job's status and JobsFailed metric tell it.
        marked = sfn.Succeed(self, "JobMarkedFailed", comment="the job ended failed; the finalizer did its work")
        definition = assemble.next(complete).next(sfn.Succeed(self, "Done"))
        mark_failed.next(marked)
        # Under /aws/vendedlogs/: CloudWatch Logs then needs no resource-policy entry per log group for the
        # delivery (busy accounts hit that policy's size limit). Named after the stack, so stages do not collide.
        self.log_group = log_group = logs.LogGroup(
            self,
            "StateMachineLogs",
            log_group_name=f"/aws/vendedlogs/states/{Stack.of(self).stack_name}-finalizer",
            retention=retention(config.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            state_machine_type=sfn.StateMachineType.STANDARD,
            timeout=MACHINE_TIMEOUT,
            tracing_enabled=config.tracing,
            # ALL: a few states per job, and the execution history of a failed job is what an operator reads first.
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
        )
        if not config.tracing:
            acknowledge(
                resource_of(self.state_machine),
                "AwsSolutions-SF2",
                "X-Ray follows bulkapi:tracing (off here) on every part of the stack: the functions, the API stage "
                "and this state machine; its execution history and logs (level ALL) show each job's steps.",
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
        # ListBucketVersions under parts/ only).
        # (Deletes name versions: DeleteObjectVersion only.) On results/: GetObject because a retried Assemble looks for
        # the result it already wrote (HeadObject), AbortMultipartUpload because a failed assembly aborts its upload.
        storage.grant_objects(self.function, "parts/", "GetObject", "DeleteObjectVersion")
        storage.grant_objects(self.function, "results/", "GetObject", "PutObject", "AbortMultipartUpload")
        storage.grant_list_versions(self.function, "parts/")
        storage.grant_jobs(self.function, "GetItem", "PutItem", "UpdateItem")
        bus.grant_put_events_to(self.function)

"""The sweeper: every few minutes, end the jobs that would otherwise stay unfinished (functions/logic/sweeper.py).

A job can be stranded by a lost S3 event (queued forever), a splitter that kept failing, workers that stopped
counting, or a finalizer start that never happened. The sweeper walks the sparse `active` index of the jobs table,
fails the jobs that cannot move on and starts the finalizer of those whose batches are all counted. A sweep is
idempotent (conditional status changes; the finalizer's execution name is the job id), so a missed or repeated run
is harmless: the next one catches up.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.functions import FunctionFactory
from infra.queues import failure_queue
from infra.storage import ACTIVE_INDEX, StorageConstruct

SCHEDULE = Duration.minutes(5)


class SweeperConstruct(Construct):
    """The sweeper function, the schedule (default bus) that runs it, and its dead-letter queue."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: FunctionFactory,
        storage: StorageConstruct,
        state_machine: sfn.IStateMachine,
        upload_url_ttl_seconds: int,
        fetch_wait_seconds: int,
        fetch_lease_seconds: int,
    ) -> None:
        super().__init__(scope, construct_id)
        # The thresholds (start_after, split_lease, stalled_after, upload_grace) keep the settings model's defaults;
        # the upload form's lifetime is the API's, a URL job's fetch windows the fetch queue's (infra/fetch.py).
        # A tick carries no data, so nothing in this queue is replayed: it is where a run that failed 3 times is
        # counted (SweeperFailuresDepth) instead of dropped, and every asynchronously invoked function has one.
        self.failures = failure_queue(self, "Failures")
        self.function = functions.make(
            self,
            "Sweeper",
            handler="sweeper",
            env={
                **storage.environment(state_machine),
                "upload_url_ttl_seconds": str(upload_url_ttl_seconds),
                "fetch_wait_seconds": str(fetch_wait_seconds),
                "fetch_lease_seconds": str(fetch_lease_seconds),
            },
            timeout=Duration.minutes(5),
            memory=512,
            dead_letter_queue=self.failures,
        )
        self.rule = events.Rule(
            self,
            "Schedule",
            description="bulkapi: end jobs that would otherwise stay unfinished",
            schedule=events.Schedule.rate(SCHEDULE),
            # A sweep older than the next one is worth nothing: the next run covers the same jobs. For the same reason
            # a tick in the dead-letter queue is not replayed, only purged once the sweeper works again.
            targets=[targets.LambdaFunction(self.function, retry_attempts=2, max_event_age=SCHEDULE)],
        )
        # Lists unfinished jobs (keys only) through the index, reads each one and moves its status;
        # starts the finalizer of a job whose batches are all counted or that it failed.
        storage.grant_index_query(self.function, ACTIVE_INDEX)
        storage.grant_jobs(self.function, "GetItem", "UpdateItem")
        state_machine.grant_start_execution(self.function)
        # Looks for an expired upload form's file before failing its job (HEAD): GetObject under uploads/, and
        # ListBucket so that an absent file answers 404 rather than 403 (S3 hides absence from those who cannot list).
        storage.grant_objects(self.function, "uploads/", "GetObject")
        storage.grant_bucket(self.function, "ListBucket")

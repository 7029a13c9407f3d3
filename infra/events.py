"""Events: the bus that carries the project's bulk_job.* events."""

from __future__ import annotations

from aws_cdk import aws_events as events
from constructs import Construct


class EventsConstruct(Construct):
    """The bus exists before the functions that publish to it (splitter, finalizer) and the rule that reads it."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.bus = events.EventBus(self, "Bus")

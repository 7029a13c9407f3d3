"""The bulkapi stack: wires the constructs through typed properties."""

from __future__ import annotations

from aws_cdk import App, CfnOutput, Duration, Stack
from constructs import Construct

from functions.settings import WebhookSettings
from infra.api import ApiConstruct
from infra.config import StackConfig
from infra.events import EventsConstruct
from infra.finalizer import FinalizerConstruct
from infra.functions import make_function
from infra.pipeline import PipelineConstruct
from infra.storage import StorageConstruct

STACK_NAME = "BulkApi"


class BulkApiStack(Stack):
    """Everything the product needs in one account and region."""

    def __init__(self, scope: Construct, construct_id: str, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        config = StackConfig.from_node(self.node)
        storage = StorageConstruct(self, "Storage", config=config)
        events = EventsConstruct(self, "Events")
        finalizer = FinalizerConstruct(self, "Finalizer", config=config, storage=storage,
                                       bus_name=events.bus.event_bus_name)
        events.bus.grant_put_events_to(finalizer.function)
        pipeline = PipelineConstruct(self, "Pipeline", config=config, storage=storage,
                                     state_machine=finalizer.state_machine, bus=events.bus)
        api = ApiConstruct(self, "Api", config=config, storage=storage, state_machine=finalizer.state_machine)
        webhooks = make_function(
            self, "Webhooks", handler="webhooks", settings=WebhookSettings,
            env={"jobs_table": storage.table.table_name, "bucket": storage.bucket.bucket_name},
            timeout=Duration.seconds(60), memory=256, log_retention_days=config.log_retention_days,
        )
        storage.table.grant_read_write_data(webhooks)
        events.route_job_events(webhooks)
        self.pipeline = pipeline
        CfnOutput(self, "ApiUrl", value=api.rest_api.url, description="Base URL of the REST API")
        CfnOutput(self, "UploadBucket", value=storage.bucket.bucket_name,
                  description="Bucket for direct drops (drop/<account_id>/<type>/<name>.csv) and results")
        CfnOutput(self, "DropPrefix", value="drop/", description="Prefix where dropped CSV files become jobs")
        CfnOutput(self, "EventBusName", value=events.bus.event_bus_name, description="Bus carrying bulk_job.* events")


def build_app(context: dict[str, object] | None = None, outdir: str | None = None) -> App:
    """The CDK app with the one stack; `context` overrides cdk.json (tests pass bundling and config here)."""
    app = App(context=context, outdir=outdir) if outdir else App(context=context)
    BulkApiStack(app, STACK_NAME)
    return app

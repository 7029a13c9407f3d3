"""The bulkapi stack: wires the constructs through typed properties."""

from __future__ import annotations

import json
import os
from typing import Any

from aws_cdk import App, CfnOutput, Stack
from constructs import Construct

from infra.api import ApiConstruct
from infra.config import StackConfig, cdk_json_context
from infra.downloads import DownloadsConstruct
from infra.enrichment import EnrichmentConstruct
from infra.events import EventsConstruct
from infra.finalizer import FinalizerConstruct
from infra.functions import FunctionFactory
from infra.layer import DependencyLayerConstruct
from infra.nag import add_checks
from infra.observability import Monitored, ObservabilityConstruct
from infra.pipeline import PipelineConstruct
from infra.storage import StorageConstruct
from infra.streaming import StreamingConstruct
from infra.sweeper import SweeperConstruct
from infra.webhooks import WebhooksConstruct

STACK_NAME = "BulkApi"
DROP_PREFIX = "drop/"


class BulkApiStack(Stack):
    """Everything the product needs in one account and region."""

    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config = StackConfig.from_node(self.node)
        self.functions = functions = FunctionFactory(
            log_retention_days=config.log_retention_days,
            layers=[DependencyLayerConstruct(self, "Dependencies").layer],
        )
        self.storage = storage = StorageConstruct(self, "Storage", config=config)
        self.events = events = EventsConstruct(self, "Events")
        self.enrichment = enrichment = EnrichmentConstruct(self, "Enrichment", config=config)
        self.finalizer = finalizer = FinalizerConstruct(
            self, "Finalizer", config=config, functions=functions, storage=storage, bus=events.bus
        )
        self.pipeline = pipeline = PipelineConstruct(
            self,
            "Pipeline",
            config=config,
            functions=functions,
            storage=storage,
            enrichment=enrichment,
            state_machine=finalizer.state_machine,
            bus=events.bus,
        )
        self.downloads = downloads = DownloadsConstruct(
            self, "Downloads", config=config, functions=functions, storage=storage
        )
        self.api = api = ApiConstruct(
            self,
            "Api",
            config=config,
            functions=functions,
            storage=storage,
            state_machine=finalizer.state_machine,
            variant_queue=downloads.queue,
        )
        self.streaming = StreamingConstruct(
            self,
            "Streaming",
            functions=functions,
            storage=storage,
            enrichment=enrichment,
            rest_api=api.rest_api,
            cors_origins=",".join(config.cors_origins),
        )
        self.webhooks = webhooks = WebhooksConstruct(
            self, "Webhooks", config=config, functions=functions, storage=storage, bus=events.bus, api_url=api.url
        )
        self.sweeper = SweeperConstruct(
            self, "Sweeper", functions=functions, storage=storage, state_machine=finalizer.state_machine
        )
        self.observability = observability = ObservabilityConstruct(
            self,
            "Observability",
            config=config,
            monitored=Monitored(
                work_queue=pipeline.queue,
                work_dlq=pipeline.dlq,
                webhook_dlq=webhooks.dlq,
                webhook_retry_dlq=webhooks.retry_dlq,
                variant_dlq=downloads.dlq,
                worker=pipeline.worker,
                state_machine=finalizer.state_machine,
                rest_api=api.rest_api,
                functions={path.split("/", 1)[1]: fn for path, fn in functions.built.items()},
            ),
        )
        CfnOutput(self, "ApiUrl", value=api.url, description="Base URL of the REST API (append api/...)")
        CfnOutput(
            self,
            "UploadBucket",
            value=storage.bucket.bucket_name,
            description="Bucket for direct drops (drop/<account_id>/<type>/<name>.csv); also holds results/",
        )
        CfnOutput(self, "DropPrefix", value=DROP_PREFIX, description="Prefix where dropped CSV files become jobs")
        CfnOutput(
            self,
            "EventBusName",
            value=events.bus.event_bus_name,
            description="Bus carrying bulk_job.* events (source bulkapi)",
        )
        CfnOutput(
            self, "WorkQueueArn", value=pipeline.queue.queue_arn, description="Work queue: destination of a DLQ redrive"
        )
        CfnOutput(
            self,
            "WorkDlqArn",
            value=pipeline.dlq.queue_arn,
            description="Work dead-letter queue: source of a DLQ redrive",
        )
        CfnOutput(
            self,
            "ProviderKeysSecretArn",
            value=enrichment.secret.secret_arn,
            description="Provider API keys, a JSON object: hibp_api_key, search_api_key, search_engine_id",
        )
        CfnOutput(
            self,
            "JobsTableName",
            value=storage.table.table_name,
            description="Jobs table: `bulkapi admin --table <this> create-account/create-key`",
        )
        CfnOutput(
            self,
            "WebhookDlqUrl",
            value=webhooks.dlq.queue_url,
            description="bulk_job.* events the webhook sender failed on (EventBridge gave up after 24 h)",
        )
        CfnOutput(
            self,
            "WebhookRetryDlqArn",
            value=webhooks.retry_dlq.queue_arn,
            description="Webhook retries the sender failed on: source of a redrive to the retry queue",
        )
        CfnOutput(
            self,
            "DashboardName",
            value=observability.dashboard.dashboard_name,
            description="CloudWatch dashboard of jobs, rows, queues and errors",
        )


def _cli_context() -> dict[str, Any]:
    # The CDK CLI hands cdk.json + `-c` values to the app in CDK_CONTEXT_JSON.
    raw = os.environ.get("CDK_CONTEXT_JSON")
    return dict(json.loads(raw)) if raw else {}


def build_app(context: dict[str, Any] | None = None, outdir: str | None = None, *, nag: bool = False) -> App:
    """The CDK app with the one stack.

    cdk.json's context is applied here too, so tests and the local runtime synthesize what `cdk synth` does;
    `context` overrides it (tests pass `aws:cdk:bundling-stacks: []`), and the CLI's own context overrides both.
    `nag=True` adds the cdk-nag AwsSolutions checks: then any unacknowledged finding fails the synth.
    """
    merged = {**cdk_json_context(), **(context or {})}
    StackConfig.check_keys({**merged, **_cli_context()})
    app = App(context=merged, outdir=outdir) if outdir else App(context=merged)
    BulkApiStack(app, STACK_NAME)
    if nag:
        add_checks(app)
    return app

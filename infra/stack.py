"""The bulkapi stack: wires the constructs through typed properties."""

from __future__ import annotations

import json
import os
from typing import Any

from aws_cdk import App, CfnOutput, Environment, Stack, Tags
from constructs import Construct

from infra.api import ApiConstruct, acknowledge_cognito
from infra.api_access import AuthorizerConstruct
from infra.config import StackConfig, cdk_json_context
from infra.downloads import DownloadsConstruct
from infra.enrichment import EnrichmentConstruct
from infra.events import EventsConstruct
from infra.fetch import FetchConstruct
from infra.finalizer import FinalizerConstruct
from infra.functions import FunctionFactory
from infra.layer import DependencyLayerConstruct
from infra.nag import add_checks
from infra.observability import Monitored, ObservabilityConstruct
from infra.pipeline import PipelineConstruct
from infra.storage import StorageConstruct
from infra.streaming import StreamingConstruct
from infra.sweeper import SweeperConstruct
from infra.waf import WafConstruct
from infra.webhooks import WebhooksConstruct

STACK_PREFIX = "BulkApi"
DROP_PREFIX = "drop/"
PROJECT_TAG = "bulkapi"


def stack_name(stage: str) -> str:
    """The stack of one stage: `BulkApi-<stage>`, so stages deploy side by side in one account and region."""
    return f"{STACK_PREFIX}-{stage}"


class BulkApiStack(Stack):
    """Everything the product needs in one account and region."""

    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config = StackConfig.from_node(self.node)
        check_alarm_target(config)
        # On every taggable resource (CDK's tag aspect; the stack's own tags are given in build_app): cost
        # allocation and "which stage is this?" in the console.
        Tags.of(self).add("project", PROJECT_TAG)
        Tags.of(self).add("stage", config.stage)
        self.functions = functions = FunctionFactory(
            log_retention_days=config.log_retention_days,
            tracing=config.tracing,
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
        )
        self.authorizer = authorizer = AuthorizerConstruct(self, "Authorizer", functions=functions, storage=storage)
        self.downloads = downloads = DownloadsConstruct(
            self, "Downloads", config=config, functions=functions, storage=storage
        )
        self.fetch = fetch = FetchConstruct(
            self,
            "Fetch",
            config=config,
            functions=functions,
            storage=storage,
            state_machine=finalizer.state_machine,
        )
        self.api = api = ApiConstruct(
            self,
            "Api",
            config=config,
            functions=functions,
            storage=storage,
            state_machine=finalizer.state_machine,
            authorizer=authorizer,
            variant_queue=downloads.queue,
            fetch_queue=fetch.queue,
        )
        self.streaming = StreamingConstruct(
            self,
            "Streaming",
            functions=functions,
            storage=storage,
            enrichment=enrichment,
            rest_api=api.rest_api,
            cors_origins=",".join(config.cors_origins),
            web_adapter_layer_arn=config.web_adapter_layer_arn,
            reserved_concurrency=config.stream_reserved_concurrency,
        )
        if config.waf_enabled:
            WafConstruct(self, "Waf", config=config, stage=api.rest_api.deployment_stage)
        acknowledge_cognito(api.rest_api)
        self.webhooks = webhooks = WebhooksConstruct(
            self, "Webhooks", config=config, functions=functions, storage=storage, bus=events.bus, api_url=api.url
        )
        self.sweeper = SweeperConstruct(
            self,
            "Sweeper",
            functions=functions,
            storage=storage,
            state_machine=finalizer.state_machine,
            upload_url_ttl_seconds=config.upload_url_ttl_seconds,
            fetch_wait_seconds=fetch.wait_seconds,
            fetch_lease_seconds=fetch.lease_seconds,
        )
        self.observability = observability = ObservabilityConstruct(
            self,
            "Observability",
            config=config,
            monitored=Monitored(
                work_queue=pipeline.queue,
                work_dlq=pipeline.dlq,
                webhook_dlq=webhooks.dlq,
                split_failures=pipeline.split_failures,
                sweeper_failures=self.sweeper.failures,
                webhook_retry_dlq=webhooks.retry_dlq,
                variant_dlq=downloads.dlq,
                fetch_dlq=fetch.dlq,
                worker=pipeline.worker,
                state_machine=finalizer.state_machine,
                rest_api=api.rest_api,
                functions=dict(functions.by_handler),
                tables={"jobs": storage.table, "answer_cache": enrichment.cache},
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
            description="bulk_job.* events the webhook sender failed on 3 times (or EventBridge could not deliver)",
        )
        CfnOutput(
            self,
            "WebhookSenderName",
            value=webhooks.function.function_name,
            description="The webhook sender: where a replay of the webhook DLQ's events is invoked",
        )
        CfnOutput(
            self,
            "SplitFailuresUrl",
            value=pipeline.split_failures.queue_url,
            description="S3 events the splitter failed on 3 times (its Lambda dead-letter queue)",
        )
        CfnOutput(
            self,
            "SplitterName",
            value=pipeline.splitter.function_name,
            description="The splitter: where a replay of the split failures is invoked",
        )
        CfnOutput(
            self,
            "SweeperFailuresUrl",
            value=self.sweeper.failures.queue_url,
            description="Scheduled sweeps that failed 3 times (the sweeper's dead-letter queue): purge once it works",
        )
        CfnOutput(
            self,
            "WebhookRetryDlqArn",
            value=webhooks.retry_dlq.queue_arn,
            description="Webhook retries the sender failed on: source of a redrive to the retry queue",
        )
        CfnOutput(
            self,
            "UsagePlanId",
            value=api.usage_plan.usage_plan_id,
            description="Per-account usage plan: `bulkapi admin usage-key <account> --usage-plan <this>`",
        )
        CfnOutput(
            self,
            "AlarmTopicArn",
            value=observability.topic.topic_arn,
            description="SNS topic every alarm notifies (alarm and OK): subscribe to it",
        )
        CfnOutput(
            self,
            "DashboardName",
            value=observability.dashboard.dashboard_name,
            description="CloudWatch dashboard of jobs, rows, queues and errors",
        )


def check_alarm_target(config: StackConfig) -> None:
    """A production stage's alarms must reach a person: refuse to synthesize one that notifies nobody."""
    if config.is_production and not (config.alarm_email or config.alarm_topic_arn):
        raise ValueError(
            f"stage {config.stage!r} is a production stage, but its alarms would notify nobody. Give them a "
            "target: -c bulkapi:alarmEmail=ops@example.com (an address to subscribe; confirm AWS's e-mail), or "
            "-c bulkapi:alarmTopicArn=arn:aws:sns:<region>:<account>:<topic> (an existing topic), or set it in "
            "cdk.json. A stage that serves no customers can say so: -c bulkapi:production=false."
        )


def _cli_context() -> dict[str, Any]:
    # The CDK CLI hands cdk.json + `-c` values to the app in CDK_CONTEXT_JSON.
    raw = os.environ.get("CDK_CONTEXT_JSON")
    return dict(json.loads(raw)) if raw else {}


def build_app(
    context: dict[str, Any] | None = None, outdir: str | None = None, *, nag: bool = False, region: str | None = None
) -> App:
    """The CDK app with the stack of one stage (`bulkapi:stage`), named `BulkApi-<stage>`.

    cdk.json's context is applied here too, so tests and the local runtime synthesize what `cdk synth` does;
    `context` overrides it (tests pass `aws:cdk:bundling-stacks: []`), and the CLI's own context overrides both.
    `nag=True` adds the cdk-nag AwsSolutions checks: then any unacknowledged finding fails the synth.
    `region` binds the stack to a region (app.py passes the CDK CLI's); without it the stack is region-agnostic.
    """
    merged = {**cdk_json_context(), **(context or {})}
    StackConfig.check_keys({**merged, **_cli_context()})
    app = App(context=merged, outdir=outdir) if outdir else App(context=merged)
    config = StackConfig.from_node(app.node)
    BulkApiStack(
        app,
        stack_name(config.stage),
        env=Environment(region=region) if region else None,
        # CloudFormation then refuses `cdk destroy` (and a delete from the console) until it is turned off by hand.
        termination_protection=not config.ephemeral,
        # Stack tags are given explicitly (@aws-cdk/core:explicitStackTags): CloudFormation propagates them to
        # what it creates, including resources CDK cannot tag.
        tags={"project": PROJECT_TAG, "stage": config.stage},
    )
    if nag:
        add_checks(app)
    return app


def the_stack(app: App) -> BulkApiStack:
    """The one bulkapi stack of an app built by `build_app`."""
    stacks = [child for child in app.node.children if isinstance(child, BulkApiStack)]
    if len(stacks) != 1:
        raise ValueError(f"expected one BulkApiStack, found {len(stacks)}")
    return stacks[0]

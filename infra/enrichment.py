"""Online enrichment: the answer cache table, the provider keys secret, and the settings the enriching functions get.

Providers are off unless the operator turns them on (cdk.json `bulkapi:dnsEnabled`, `bulkapi:rdapEnabled`,
`bulkapi:websiteEnabled`) or puts API keys into the secret (`hibp_api_key`, `search_api_key`, `search_engine_id`;
README "Online enrichment"). Keys never go into the template or a function's environment.
"""

from __future__ import annotations

import math

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from functions.logic import inline
from functions.settings import StreamSettings
from infra.config import StackConfig
from infra.nag import acknowledge, resource_of
from infra.storage import pin_logical_id

# Pinned like the jobs table's (infra/storage.py): a replaced cache only costs provider calls, but a moved construct
# should not silently swap tables.
CACHE_TABLE_ID = "EnrichmentAnswerCache436005D6"


def provider_budget(config: StackConfig) -> float:
    """Seconds one batch may spend on one provider: a worker invocation runs up to `worker_batch_size` batches
    one after the other, each through up to two online sources (domain: DNS and RDAP), within 80% of its timeout."""
    return round(0.8 * config.worker_timeout_seconds / config.worker_batch_size / 2, 1)


def inline_rounds() -> int:
    """How many enrichment calls the largest inline request makes one after the other: its chunks (1, 2, 4, ...
    up to MAX_CHUNK values) run `inline_concurrency` (the default) at a time."""
    largest = max(kind.max_items for kind in inline.KINDS.values())
    chunks = len(inline.chunk_sizes(largest, inline.MAX_CHUNK))
    concurrency: int = StreamSettings.model_fields["inline_concurrency"].default
    return math.ceil(chunks / concurrency)


def stream_provider_budget(timeout_seconds: float) -> float:
    """Seconds one inline enrichment call may spend on one provider: the largest request's calls, one round after
    another, each through up to two online sources, within 80% of the stream function's timeout. (The worker's
    budget would let a 1,000-email stream outlive its timeout when a provider hangs.)"""
    return math.floor(10 * 0.8 * timeout_seconds / inline_rounds() / 2) / 10  # rounded down: never over


class EnrichmentConstruct(Construct):
    """The cache table and the provider secret; `settings` and `grant` hand them to a function."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StackConfig) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.cache = dynamodb.TableV2(
            self,
            "AnswerCache",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            billing=dynamodb.Billing.on_demand(),
            time_to_live_attribute="expires_at",
            # Only provider answers that expire within a day: nothing to keep when the stack goes.
            removal_policy=RemovalPolicy.DESTROY,
        )
        pin_logical_id(self.cache, CACHE_TABLE_ID)
        self.secret = secretsmanager.Secret(
            self,
            "ProviderKeys",
            description="bulkapi provider API keys: a JSON object with hibp_api_key, search_api_key, search_engine_id",
            secret_object_value={},
        )
        acknowledge(
            resource_of(self.secret),
            "AwsSolutions-SMG4",
            "Third-party API keys (Have I Been Pwned, the search API) are issued by those services; they cannot be "
            "rotated by a Lambda here. Operators rotate them at the provider and update the secret.",
        )

    def settings(self, budget_seconds: float) -> dict[str, str]:
        """The EnrichSettings values of an enriching function, with its own provider budget."""
        c = self.config
        return {
            "phone_default_region": c.phone_default_region,
            "cache_table": self.cache.table_name,
            "cache_ttl_seconds": str(c.cache_ttl_seconds),
            "provider_budget_seconds": str(budget_seconds),
            "provider_secret_arn": self.secret.secret_arn,
            "dns_enabled": str(c.dns_enabled).lower(),
            "rdap_enabled": str(c.rdap_enabled).lower(),
            "website_enabled": str(c.website_enabled).lower(),
            # Each worker environment has its own limiter: together they must stay within the plan's rate.
            "hibp_requests_per_minute": str(round(c.hibp_requests_per_minute / c.worker_max_concurrency, 3)),
            "search_requests_per_minute": str(c.search_requests_per_minute),
        }

    def grant(self, fn: lambda_.Function) -> None:
        """Read and write cached answers (batch calls only) and read the provider keys."""
        iam.Grant.add_to_principal(
            grantee=fn,
            actions=["dynamodb:BatchGetItem", "dynamodb:BatchWriteItem"],
            resource_arns=[self.cache.table_arn],
        )
        # GetSecretValue only: CDK's grant_read adds DescribeSecret, which no function calls (`bulkapi iam-report`).
        iam.Grant.add_to_principal(
            grantee=fn, actions=["secretsmanager:GetSecretValue"], resource_arns=[self.secret.secret_arn]
        )

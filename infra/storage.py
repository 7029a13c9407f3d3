"""Storage: one bucket (prefixes uploads/, drop/, parts/, results/, rejected/), its access-log bucket, the jobs table.

One bucket rather than an upload and a results bucket: the splitter's S3 notifications, the TLS-only policy and the
lifecycle rules live in one place, and each function is granted only the prefixes it touches (grant_objects).
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import StackConfig
from infra.nag import acknowledge, policy_of

# Prefixes that only stage work: a job needs them for minutes, results/ is what callers download.
STAGING_PREFIXES = ("uploads/", "drop/", "parts/", "rejected/")
RESULTS_PREFIX = "results/"
BY_ACCOUNT_INDEX = "by_account"
# Sparse: only jobs that have not ended carry `active` (functions/adapters/table.py, jobs.py); the sweeper queries it.
ACTIVE_INDEX = "active"
# Data and logs outlive the stack (`cdk destroy`, a replacement), but a first deploy that rolls back deletes what it
# created: plain RETAIN would leave an empty bucket or table behind that blocks nothing yet costs and confuses.
RETAINED = RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE


class StorageConstruct(Construct):
    """The data bucket, its access-log bucket and the jobs table, with per-prefix and per-action grants."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StackConfig) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            # S3 server access logging can only deliver to SSE-S3 buckets.
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=RETAINED,
            lifecycle_rules=[
                s3.LifecycleRule(id="expire-logs", expiration=Duration.days(config.access_log_expiry_days))
            ],
        )
        staging = Duration.days(config.staging_expiry_days)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="bucket/",
            removal_policy=RETAINED,
            # The web console (served by the API, README "Web console") posts large files straight to the bucket
            # with the presigned upload; a browser only lets the page read the answer when the bucket allows its
            # origin: the API's own (any execute-api host of this region) and the configured `corsOrigins`.
            cors=[
                s3.CorsRule(
                    allowed_methods=[s3.HttpMethods.POST],
                    allowed_origins=[
                        f"https://*.execute-api.{Stack.of(self).region}.{Stack.of(self).url_suffix}",
                        *config.cors_origins,
                    ],
                    allowed_headers=["*"],
                    max_age=3600,
                )
            ],
            lifecycle_rules=[
                *(s3.LifecycleRule(id=p.rstrip("/"), prefix=p, expiration=staging) for p in STAGING_PREFIXES),
                s3.LifecycleRule(id="results", prefix=RESULTS_PREFIX, expiration=Duration.days(config.retention_days)),
                # Versioning guards against overwrites and deletes; old versions need not outlive a week.
                s3.LifecycleRule(
                    id="old-versions",
                    noncurrent_version_expiration=Duration.days(7),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                    expired_object_delete_marker=True,
                ),
            ],
        )
        self.table = dynamodb.TableV2(
            self,
            "Jobs",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing=dynamodb.Billing.on_demand(),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=config.deletion_protection,
            time_to_live_attribute="expires_at",
            removal_policy=RETAINED,
            global_secondary_indexes=[
                dynamodb.GlobalSecondaryIndexPropsV2(
                    index_name=BY_ACCOUNT_INDEX,
                    partition_key=dynamodb.Attribute(name="account_id", type=dynamodb.AttributeType.STRING),
                    sort_key=dynamodb.Attribute(name="created_at", type=dynamodb.AttributeType.STRING),
                ),
                # Keys only: the sweeper reads each job it finds strongly consistent from the table anyway.
                dynamodb.GlobalSecondaryIndexPropsV2(
                    index_name=ACTIVE_INDEX,
                    partition_key=dynamodb.Attribute(name="active", type=dynamodb.AttributeType.STRING),
                    sort_key=dynamodb.Attribute(name="created_at", type=dynamodb.AttributeType.STRING),
                    projection_type=dynamodb.ProjectionType.KEYS_ONLY,
                ),
            ],
        )

    def grant_objects(self, fn: lambda_.Function, prefix: str, *actions: str) -> iam.Grant:
        """Object actions (`GetObject`, `PutObject`, ...) on the keys under one prefix, and nothing else."""
        if fn.role is None:
            raise ValueError(f"{fn.node.path} has no role to grant to")
        grant = iam.Grant.add_to_principal(
            grantee=fn,
            actions=[f"s3:{action}" for action in actions],
            resource_arns=[self.bucket.arn_for_objects(f"{prefix}*")],
        )
        bucket_id = Stack.of(self).get_logical_id(self.bucket.node.default_child)  # type: ignore[arg-type]
        acknowledge(
            policy_of(fn.role),
            f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/{prefix}*]",
            f"Keys under {prefix} are named per account and job at run time, so the grant names the prefix; "
            f"it allows only {', '.join(actions)} there.",
        )
        return grant

    def grant_list_versions(self, fn: lambda_.Function, *prefixes: str) -> iam.Grant:
        """ListBucketVersions on the bucket, for listings under the given prefixes only (what a purge deletes)."""
        return iam.Grant.add_to_principal(
            grantee=fn,
            actions=["s3:ListBucketVersions"],
            resource_arns=[self.bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{prefix}*" for prefix in prefixes]}},
        )

    def grant_bucket(self, fn: lambda_.Function, *actions: str) -> iam.Grant:
        """Bucket-level actions that read its configuration (`GetBucketVersioning`), on the bucket only."""
        return iam.Grant.add_to_principal(
            grantee=fn, actions=[f"s3:{action}" for action in actions], resource_arns=[self.bucket.bucket_arn]
        )

    def grant_jobs(self, fn: lambda_.Function, *actions: str, query_by_account: bool = False) -> iam.Grant:
        """Item actions (`GetItem`, `UpdateItem`, ...) on the jobs table; Query on the by_account index if asked."""
        grant = iam.Grant.add_to_principal(
            grantee=fn, actions=[f"dynamodb:{action}" for action in actions], resource_arns=[self.table.table_arn]
        )
        if query_by_account:
            grant = grant.combine(self.grant_index_query(fn, BY_ACCOUNT_INDEX))
        return grant

    def grant_index_query(self, fn: lambda_.Function, index_name: str) -> iam.Grant:
        """Query on one index of the jobs table, and nothing else on it."""
        return iam.Grant.add_to_principal(
            grantee=fn, actions=["dynamodb:Query"], resource_arns=[f"{self.table.table_arn}/index/{index_name}"]
        )

"""Storage: one bucket (prefixes uploads/, drop/, parts/, results/, rejected/), its access-log bucket, the jobs table.

One bucket rather than an upload and a results bucket: the splitter's S3 notifications, the TLS-only policy and the
lifecycle rules live in one place, and each function is granted only the prefixes it touches (grant_objects).
"""

from __future__ import annotations

from aws_cdk import CfnResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import StackConfig
from infra.nag import acknowledge, policy_of, resource_of

# Prefixes that only stage work: a job needs them for minutes, results/ is what callers download.
STAGING_PREFIXES = ("uploads/", "drop/", "parts/", "rejected/")
RESULTS_PREFIX = "results/"
BY_ACCOUNT_INDEX = "by_account"
# Sparse: only jobs that have not ended carry `active` (functions/adapters/table.py, jobs.py); the sweeper queries it.
ACTIVE_INDEX = "active"
# Data and logs outlive the stack (`cdk destroy`, a replacement), but a first deploy that rolls back deletes what it
# created: plain RETAIN would leave an empty bucket or table behind that blocks nothing yet costs and confuses.
RETAINED = RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE
# The logical ids of the resources that hold customer data or audit logs, pinned: CloudFormation replaces a resource
# whose logical id changes (a new, empty table; the old one kept aside), so a renamed or moved construct must not
# change them. These are the ids the stack has always had; tests/infra/test_storage.py holds them, and
# `./dev cdk-check` refuses a change that would replace or delete one.
JOBS_TABLE_ID = "StorageJobs4C7573CB"
BUCKET_ID = "StorageBucket5CB7C8EA"
ACCESS_LOGS_ID = "StorageAccessLogs96FB524C"


def pin_logical_id(construct: Construct, logical_id: str) -> None:
    """Give an L2 construct's CloudFormation resource a fixed logical id, whatever its construct path."""
    resource = construct.node.default_child
    if not isinstance(resource, CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource to pin")
    resource.override_logical_id(logical_id)


class StorageConstruct(Construct):
    """The data bucket, its access-log bucket and the jobs table, with per-prefix and per-action grants.

    `bulkapi:existingJobsTable` / `bulkapi:existingBucket` adopt a table or bucket that exists already (grants,
    settings and outputs then name it); the stack then has no table or bucket resource of its own.
    """

    table: dynamodb.ITableV2
    bucket: s3.IBucket

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
        pin_logical_id(self.access_logs, ACCESS_LOGS_ID)
        if config.existing_bucket:
            self.bucket = s3.Bucket.from_bucket_name(self, "Bucket", config.existing_bucket)
            # cdk-nag passes a bucket that receives another's access logs; the adopted bucket logs where it already
            # did, so nothing here names this one as its target any more.
            acknowledge(
                resource_of(self.access_logs),
                "AwsSolutions-S1",
                "This is the access-log bucket: it keeps the logs written before the data bucket was adopted "
                "(bulkapi:existingBucket); logging a log bucket into itself would loop.",
            )
        else:
            self.bucket = self._bucket(config)
        if config.existing_jobs_table:
            self.table = dynamodb.TableV2.from_table_name(self, "Jobs", config.existing_jobs_table)
        else:
            self.table = self._table(config)

    def _bucket(self, config: StackConfig) -> s3.Bucket:
        staging = Duration.days(config.staging_expiry_days)
        bucket = s3.Bucket(
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
        pin_logical_id(bucket, BUCKET_ID)
        return bucket

    def _table(self, config: StackConfig) -> dynamodb.TableV2:
        table = dynamodb.TableV2(
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
        pin_logical_id(table, JOBS_TABLE_ID)
        return table

    def grant_objects(self, fn: lambda_.Function, prefix: str, *actions: str) -> iam.Grant:
        """Object actions (`GetObject`, `PutObject`, ...) on the keys under one prefix, and nothing else."""
        if fn.role is None:
            raise ValueError(f"{fn.node.path} has no role to grant to")
        grant = iam.Grant.add_to_principal(
            grantee=fn,
            actions=[f"s3:{action}" for action in actions],
            resource_arns=[self.bucket.arn_for_objects(f"{prefix}*")],
        )
        # cdk-nag names the resource as the template spells it: the stack's bucket by its ARN attribute, an adopted
        # one by its literal ARN.
        own = isinstance(self.bucket, s3.Bucket)
        arn = f"<{BUCKET_ID}.Arn>" if own else f"arn:<AWS::Partition>:s3:::{self.bucket.bucket_name}"
        acknowledge(
            policy_of(fn.role),
            f"AwsSolutions-IAM5[Resource::{arn}/{prefix}*]",
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

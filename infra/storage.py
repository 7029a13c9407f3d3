"""Storage: one bucket (prefixes uploads/, drop/, parts/, results/, rejected/) and the jobs table."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import StackConfig


class StorageConstruct(Construct):
    """One bucket keeps a single notification configuration and policy; prefixes carry the lifecycle rules."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StackConfig) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(id="uploads", prefix="uploads/", expiration=Duration.days(config.retention_days)),
                s3.LifecycleRule(id="drops", prefix="drop/", expiration=Duration.days(config.retention_days)),
                s3.LifecycleRule(id="parts", prefix="parts/", expiration=Duration.days(config.retention_days)),
                s3.LifecycleRule(id="results", prefix="results/", expiration=Duration.days(config.retention_days)),
                s3.LifecycleRule(id="rejected", prefix="rejected/", expiration=Duration.days(config.retention_days)),
                s3.LifecycleRule(
                    id="old-versions",
                    noncurrent_version_expiration=Duration.days(7),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
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
            removal_policy=RemovalPolicy.RETAIN,
            global_secondary_indexes=[
                dynamodb.GlobalSecondaryIndexPropsV2(
                    index_name="by_account",
                    partition_key=dynamodb.Attribute(name="account_id", type=dynamodb.AttributeType.STRING),
                    sort_key=dynamodb.Attribute(name="created_at", type=dynamodb.AttributeType.STRING),
                )
            ],
        )

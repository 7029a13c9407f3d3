"""The bucket, its access-log bucket and the jobs table."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match, Template

from infra.storage import RESULTS_PREFIX, STAGING_PREFIXES
from tests.infra.conftest import Synth

TLS_ONLY = Match.object_like(
    {
        "Effect": "Deny",
        "Action": "s3:*",
        "Principal": {"AWS": "*"},
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
)


def test_every_bucket_is_private_encrypted_and_tls_only(synth: Synth, template: Template) -> None:
    buckets = synth.resources("AWS::S3::Bucket")
    assert len(buckets) == 2  # data + access logs

    for bucket_id in buckets:
        template.has_resource(
            "AWS::S3::Bucket",
            {
                "Properties": Match.object_like(
                    {
                        "BucketEncryption": {
                            "ServerSideEncryptionConfiguration": [
                                {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                            ]
                        },
                        "PublicAccessBlockConfiguration": {
                            "BlockPublicAcls": True,
                            "BlockPublicPolicy": True,
                            "IgnorePublicAcls": True,
                            "RestrictPublicBuckets": True,
                        },
                    }
                ),
                "DeletionPolicy": "RetainExceptOnCreate",
            },
        )
        template.has_resource_properties(
            "AWS::S3::BucketPolicy",
            {"Bucket": {"Ref": bucket_id}, "PolicyDocument": {"Statement": Match.array_with([TLS_ONLY])}},
        )


def test_data_bucket_is_versioned_logged_and_expires_by_prefix(synth: Synth, template: Template) -> None:
    config = synth.config
    logs_id = synth.logical_id(synth.stack.storage.access_logs)
    staging_rules = [
        Match.object_like({"Prefix": prefix, "ExpirationInDays": config.staging_expiry_days, "Status": "Enabled"})
        for prefix in STAGING_PREFIXES
    ]

    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "VersioningConfiguration": {"Status": "Enabled"},
            "LoggingConfiguration": {"DestinationBucketName": {"Ref": logs_id}, "LogFilePrefix": "bucket/"},
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [
                        *staging_rules,
                        Match.object_like({"Prefix": RESULTS_PREFIX, "ExpirationInDays": config.retention_days}),
                        Match.object_like(
                            {
                                "NoncurrentVersionExpiration": Match.any_value(),
                                "AbortIncompleteMultipartUpload": Match.any_value(),
                            }
                        ),
                    ]
                )
            },
        },
    )


def test_jobs_table_is_on_demand_with_pitr_ttl_and_deletion_protection(synth: Synth, template: Template) -> None:
    # Two tables: the jobs table and the answer cache (tests/infra/test_enrichment.py)
    template.resource_count_is("AWS::DynamoDB::GlobalTable", 2)
    template.has_resource(
        "AWS::DynamoDB::GlobalTable",
        {
            "Properties": Match.object_like(
                {
                    "BillingMode": "PAY_PER_REQUEST",
                    "KeySchema": [
                        {"AttributeName": "pk", "KeyType": "HASH"},
                        {"AttributeName": "sk", "KeyType": "RANGE"},
                    ],
                    "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
                    "GlobalSecondaryIndexes": [
                        Match.object_like({"IndexName": "by_account"}),
                        Match.object_like({"IndexName": "active"}),
                    ],
                    "Replicas": [
                        Match.object_like(
                            {
                                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                                "DeletionProtectionEnabled": synth.config.deletion_protection,
                            }
                        )
                    ],
                }
            ),
            "DeletionPolicy": "RetainExceptOnCreate",
        },
    )


def test_what_outlives_the_stack_is_not_left_behind_by_a_failed_first_deploy(synth: Synth) -> None:
    # Given the resources that hold data or audit logs
    kept = {
        synth.logical_id(synth.stack.storage.bucket),
        synth.logical_id(synth.stack.storage.access_logs),
        synth.logical_id(synth.stack.storage.table),
        synth.logical_id(synth.stack.api.access_logs),
    }
    resources = synth.template["Resources"]
    # Then they survive an update that replaces them and a stack deletion, but not a rolled-back create
    for lid in kept:
        assert resources[lid]["DeletionPolicy"] == "RetainExceptOnCreate", lid
        assert resources[lid]["UpdateReplacePolicy"] == "Retain", lid


def test_nothing_is_retained_unconditionally(synth: Synth) -> None:
    # A rolled-back first deploy deletes what it created: no resource keeps plain Retain.
    plain = [lid for lid, r in synth.template["Resources"].items() if r.get("DeletionPolicy") == "Retain"]
    assert plain == []


def test_the_data_bucket_lets_the_console_page_post_a_presigned_upload_and_nothing_else(synth: Synth) -> None:
    # Given the data bucket (the one that logs to the access-log bucket) and its CORS rules
    data = next(
        b for b in synth.resources("AWS::S3::Bucket").values() if "LoggingConfiguration" in b.get("Properties", {})
    )
    rules = data["Properties"]["CorsConfiguration"]["CorsRules"]
    # Then a browser may POST (the presigned upload) from the API's own origin, and no other method is allowed
    assert [rule["AllowedMethods"] for rule in rules] == [["POST"]]
    origins = json.dumps(rules[0]["AllowedOrigins"])
    assert "execute-api" in origins and '"*"' not in origins

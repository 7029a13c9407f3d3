"""The bucket, its access-log bucket and the jobs table."""

from __future__ import annotations

import json

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Match, Template
from constructs import Construct

from infra.config import StackConfig, cdk_json_context
from infra.storage import RESULTS_PREFIX, STAGING_PREFIXES, StorageConstruct
from tests.infra.conftest import Synth, synthesize

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


# The logical ids the deployed stacks have had from the start, written out here (not imported): CloudFormation
# replaces a resource whose logical id changes, so a refactor that moves or renames one of these constructs must
# keep them. Changing a value here means a new, empty table or bucket in every deployed stage.
PINNED = {
    "StorageJobs4C7573CB": ("AWS::DynamoDB::GlobalTable", "jobs table"),
    "EnrichmentAnswerCache436005D6": ("AWS::DynamoDB::GlobalTable", "answer cache"),
    "StorageBucket5CB7C8EA": ("AWS::S3::Bucket", "data bucket"),
    "StorageAccessLogs96FB524C": ("AWS::S3::Bucket", "access-log bucket"),
}


def test_stateful_resources_keep_their_logical_ids(synth: Synth) -> None:
    resources = synth.template["Resources"]
    stack = synth.stack
    # Each construct's resource has its pinned id, whatever its construct path
    assert {
        synth.logical_id(stack.storage.table): "jobs table",
        synth.logical_id(stack.enrichment.cache): "answer cache",
        synth.logical_id(stack.storage.bucket): "data bucket",
        synth.logical_id(stack.storage.access_logs): "access-log bucket",
    } == {lid: what for lid, (_, what) in PINNED.items()}
    for lid, (cfn_type, what) in PINNED.items():
        assert resources[lid]["Type"] == cfn_type, what
    # And they are the only tables and buckets: a new one would need its id pinned too
    stateful = {lid for lid, r in resources.items() if r["Type"] in ("AWS::DynamoDB::GlobalTable", "AWS::S3::Bucket")}
    assert stateful == set(PINNED)
    # And the jobs table keeps the key schema every item is written under (a change replaces the table)
    assert resources["StorageJobs4C7573CB"]["Properties"]["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]


def test_renaming_or_moving_a_stateful_construct_keeps_its_logical_id() -> None:
    # Given the storage construct built under two different construct paths (a refactor's rename and move)
    ids = []
    for parent_id, storage_id in (("", "Storage"), ("Data", "Store")):
        stack = Stack(App(context=cdk_json_context()), "S")
        parent = Construct(stack, parent_id) if parent_id else stack
        storage = StorageConstruct(parent, storage_id, config=StackConfig())
        ids.append({stack.resolve(c.node.default_child.logical_id) for c in (storage.table, storage.bucket)})  # type: ignore[union-attr]
    # Then CloudFormation sees the same table and bucket
    assert ids[0] == ids[1] == {"StorageJobs4C7573CB", "StorageBucket5CB7C8EA"}


RESTORED_TABLE = "bulkapi-prod-jobs-restored"
EXISTING_BUCKET = "acme-bulkapi-data"


@pytest.fixture(scope="module")
def adopted(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The stack pointed at a restored jobs table and an existing bucket."""
    return synthesize(
        tmp_path_factory.mktemp("cdk.out.adopted"),
        {"bulkapi:existingJobsTable": RESTORED_TABLE, "bulkapi:existingBucket": EXISTING_BUCKET},
    )


@pytest.mark.slow
def test_an_existing_table_and_bucket_are_adopted_with_their_grants(adopted: Synth) -> None:
    resources = adopted.template["Resources"]
    # Given -c bulkapi:existingJobsTable=... -c bulkapi:existingBucket=...
    # Then the stack creates no jobs table and no data bucket of its own (the cache and the access-log bucket stay)
    assert "StorageJobs4C7573CB" not in resources and "StorageBucket5CB7C8EA" not in resources
    assert set(adopted.resources("AWS::DynamoDB::GlobalTable")) == {"EnrichmentAnswerCache436005D6"}
    assert set(adopted.resources("AWS::S3::Bucket")) == {"StorageAccessLogs96FB524C"}
    # And every function that names the table or the bucket names the adopted ones
    envs = [
        f["Properties"].get("Environment", {}).get("Variables", {})
        for f in adopted.resources("AWS::Lambda::Function").values()
    ]
    tables = {env["BULKAPI_JOBS_TABLE"] for env in envs if "BULKAPI_JOBS_TABLE" in env}
    buckets = {env["BULKAPI_BUCKET"] for env in envs if "BULKAPI_BUCKET" in env}
    assert tables == {RESTORED_TABLE} and buckets == {EXISTING_BUCKET}
    # And the grants still work: they name the adopted table (and its indexes) and the bucket's prefixes
    policies = json.dumps([p["Properties"]["PolicyDocument"] for p in adopted.resources("AWS::IAM::Policy").values()])
    assert f":table/{RESTORED_TABLE}" in policies and f":table/{RESTORED_TABLE}/index/by_account" in policies
    assert f":s3:::{EXISTING_BUCKET}/uploads/*" in policies
    # And new files in the adopted bucket still reach the splitter
    (notifications,) = adopted.resources("Custom::S3BucketNotifications").values()
    assert notifications["Properties"]["BucketName"] == EXISTING_BUCKET
    # And cdk-nag is satisfied with the acknowledgements that name the adopted bucket
    assert adopted.validation_error is None, adopted.validation_error

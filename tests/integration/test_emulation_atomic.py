"""The emulation applies each request atomically: concurrent writes to one item or queue lose nothing.

moto's server on its own applies concurrent DynamoDB updates without a lock (8 threads x 300 conditional ADDs on
one item once ended at a=2277 instead of 2400). Every exactly-once and credit guarantee of the local runtime
rests on these tests.
"""

from __future__ import annotations

import hashlib
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from functions.adapters.accounts import AccountStore
from functions.adapters.credits import CreditStore
from functions.errors import InsufficientCreditsError
from functions.models import Job
from local.runtime import LocalRuntime

THREADS = 8
PER_THREAD = 300


def test_concurrent_conditional_adds_on_one_item_are_exact(runtime: LocalRuntime) -> None:
    # Given one item and eight threads, each with its own client, adding markers and counters (commit_batch's shape)
    pk = f"HAMMER#{uuid.uuid4().hex}"
    table = runtime.table

    def hammer(thread: int) -> int:
        ddb = runtime.client("dynamodb")
        refused = 0
        for i in range(PER_THREAD):
            marker = thread * PER_THREAD + i
            try:
                ddb.update_item(
                    TableName=table,
                    Key={"pk": {"S": pk}, "sk": {"S": "X"}},
                    UpdateExpression="ADD done_set :marker, a :one, b :one, c :one",
                    ConditionExpression="attribute_not_exists(done_set) OR NOT contains(done_set, :n)",
                    ExpressionAttributeValues={
                        ":marker": {"NS": [str(marker)]},
                        ":n": {"N": str(marker)},
                        ":one": {"N": "1"},
                    },
                )
            except ClientError:
                refused += 1
        return refused

    # When they all run at once
    with ThreadPoolExecutor(THREADS) as pool:
        refused = sum(pool.map(hammer, range(THREADS)))

    # Then every update counted, exactly once
    item = runtime.client("dynamodb").get_item(
        TableName=table, Key={"pk": {"S": pk}, "sk": {"S": "X"}}, ConsistentRead=True
    )["Item"]
    total = THREADS * PER_THREAD
    assert refused == 0
    assert len(item["done_set"]["NS"]) == total
    assert {k: int(item[k]["N"]) for k in ("a", "b", "c")} == {"a": total, "b": total, "c": total}


def _ledger_sum(store: CreditStore, account_id: str) -> int:
    return sum(int(entry["amount"]) for entry in store.ledger(account_id, limit=1000))


def test_parallel_reservations_never_overspend_and_the_balance_equals_the_ledger(runtime: LocalRuntime) -> None:
    # Given an account with 100 credits
    store = CreditStore(runtime.table)
    account = f"acct_{uuid.uuid4().hex[:10]}"
    assert AccountStore(runtime.table).create_account(account, "hammer", 100, "2026-01-01T00:00:00.000Z")

    def reserve(i: int) -> bool:
        job = Job(
            id=f"job_{uuid.uuid4().hex[:12]}",
            account_id=account,
            type="email",
            status="queued",
            source_key=f"uploads/{account}/{i}.csv",
            filename="x.csv",
            total_rows=7,
            created_at=f"2026-01-01T00:00:{i % 60:02d}.000Z",
        )
        try:
            CreditStore(runtime.table).create_job_reserving(job, f"2026-01-01T00:01:{i % 60:02d}.{i:03d}Z")
        except InsufficientCreditsError:
            return False
        return True

    # When 40 reservations of 7 credits race (only 14 fit)
    with ThreadPoolExecutor(THREADS) as pool:
        granted = sum(pool.map(reserve, range(40)))

    # Then exactly as many as fit were granted, and the balance is what the ledger says
    balance = store.account_credits(account)
    assert granted == 100 // 7
    assert balance == 100 - 7 * granted
    assert balance == _ledger_sum(store, account)


def test_concurrent_receives_never_hand_one_message_to_two_consumers(runtime: LocalRuntime) -> None:
    # Given a queue holding 400 messages
    sqs = runtime.client("sqs")
    url = sqs.create_queue(QueueName=f"hammer-{uuid.uuid4().hex[:8]}", Attributes={"VisibilityTimeout": "120"})[
        "QueueUrl"
    ]
    for start in range(0, 400, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": str(start + i)} for i in range(10)])

    def drain(_: int) -> list[str]:
        client: Any = runtime.client("sqs")
        got: list[str] = []
        while True:
            messages = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
                "Messages", []
            )
            if not messages:
                return got
            got += [m["Body"] for m in messages]

    # When eight consumers receive at once
    with ThreadPoolExecutor(THREADS) as pool:
        bodies = [b for part in pool.map(drain, range(THREADS)) for b in part]

    # Then each message was delivered once
    assert sorted(bodies, key=int) == [str(i) for i in range(400)]


def test_a_multipart_upload_completes_from_a_spool_with_s3s_checks_and_etag(runtime: LocalRuntime) -> None:
    # (The emulation completes multipart uploads without joining the parts in memory; S3's own rules still hold.)
    s3 = runtime.client("s3")
    bucket, key = runtime.bucket, f"results/test/{uuid.uuid4().hex}.csv"
    parts = [b"a" * (5 * 1024 * 1024), b"b" * (5 * 1024 * 1024 + 7), b"tail"]
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    etags = [
        s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=n, Body=body)["ETag"]
        for n, body in enumerate(parts, start=1)
    ]
    listed = [{"PartNumber": n, "ETag": etag} for n, etag in enumerate(etags, start=1)]
    # A part named with an ETag it does not have is refused, as S3 does
    try:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=upload,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"00000000000000000000000000000000"'}]},
        )
        raise AssertionError("a wrong ETag was accepted")
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "InvalidPart"
    done = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": listed})
    assert done["ETag"].strip('"').endswith("-3")
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"".join(parts)
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == sum(map(len, parts))
    # And a part under 5 MiB anywhere but last is refused (EntityTooSmall)
    small = f"{key}.small"
    upload = s3.create_multipart_upload(Bucket=bucket, Key=small)["UploadId"]
    etags = [s3.upload_part(Bucket=bucket, Key=small, UploadId=upload, PartNumber=n, Body=b"x")["ETag"] for n in (1, 2)]
    try:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key=small,
            UploadId=upload,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in zip((1, 2), etags, strict=True)]},
        )
        raise AssertionError("a small middle part was accepted")
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "EntityTooSmall"


def test_a_large_object_is_answered_whole_and_in_ranges(runtime: LocalRuntime) -> None:
    # (The emulation streams large objects from their temp files instead of reading them into memory.)
    s3 = runtime.client("s3")
    key = f"results/test/{uuid.uuid4().hex}.csv"
    body = bytes(range(256)) * (40 * 1024 + 7)  # ~10 MiB, over the streaming threshold
    s3.put_object(Bucket=runtime.bucket, Key=key, Body=body)
    got = s3.get_object(Bucket=runtime.bucket, Key=key)
    assert got["ContentLength"] == len(body) and got["Body"].read() == body
    part = s3.get_object(Bucket=runtime.bucket, Key=key, Range="bytes=5000000-5000099")
    assert part["ContentRange"] == f"bytes 5000000-5000099/{len(body)}"
    assert part["Body"].read() == body[5_000_000:5_000_100]


def test_listing_versions_leaves_every_object_readable_and_lists_only_the_prefix(runtime: LocalRuntime) -> None:
    # Given two objects under a prefix and one outside it, each kept in a temp file (over 64 KiB)
    s3 = runtime.client("s3")
    prefix = f"parts/job_{uuid.uuid4().hex[:8]}/"
    bodies = {f"{prefix}000000.csv": b"1" * 100_000, f"{prefix}000001.csv": b"2" * 200_000}
    other = (f"results/{prefix}x.csv", b"3" * 300_000)
    for key, body in [*bodies.items(), other]:
        s3.put_object(Bucket=runtime.bucket, Key=key, Body=body)
    # When the versions under the prefix are listed, twice (the first listing's copies are collected meanwhile)
    for _ in range(2):
        listed = s3.list_object_versions(Bucket=runtime.bucket, Prefix=prefix)["Versions"]
        # Then both objects are listed with their sizes and ETags, and nothing outside the prefix
        assert [(v["Key"], v["Size"], v["IsLatest"]) for v in listed] == [(k, len(b), True) for k, b in bodies.items()]
        assert [v["ETag"] for v in listed] == [f'"{hashlib.md5(b).hexdigest()}"' for b in bodies.values()]
    # And every object still reads whole (a listing never closes an object's storage)
    for key, body in [*bodies.items(), other]:
        assert s3.get_object(Bucket=runtime.bucket, Key=key)["Body"].read() == body

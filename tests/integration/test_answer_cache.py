"""The answer cache table and the provider keys secret, as the local runtime builds them from the template."""

from __future__ import annotations

import json

from aws_lambda_powertools.utilities import parameters

from functions.adapters import enrichment
from functions.adapters.aws import client
from functions.adapters.cache import AnswerCache
from functions.settings import EnrichSettings
from local.lambdas import WORKER
from local.runtime import LocalRuntime


def test_answers_round_trip_in_chunks_and_expired_ones_are_misses(runtime: LocalRuntime) -> None:
    # Given the cache table of the stack and a clock we control
    now = [1_800_000_000.0]
    cache = AnswerCache(runtime.function_env(WORKER)["BULKAPI_CACHE_TABLE"], clock=lambda: now[0])
    # When 230 answers are stored (more than one BatchWriteItem and BatchGetItem each) with a one-hour TTL
    entries = {f"test#{i}.example": json.dumps({"n": i}) for i in range(230)}
    cache.put_many(entries, ttl_seconds=3600)
    # Then all come back, duplicates in the request are harmless, unknown keys are misses
    found = cache.get_many([*entries, "test#0.example", "test#unknown.example"])
    assert found == entries
    # And the item carries the TTL attribute DynamoDB expires it by
    item = client("dynamodb").get_item(TableName=cache.table, Key={"pk": {"S": "test#7.example"}})["Item"]
    assert item["expires_at"] == {"N": str(1_800_000_000 + 3600)}
    # When the clock passes the TTL (DynamoDB deletes expired items only eventually)
    now[0] += 3601
    # Then the entries are misses
    assert cache.get_many(list(entries)[:5]) == {}


def test_provider_keys_come_from_the_secret(runtime: LocalRuntime) -> None:
    # Given the stack's provider secret holding an HIBP key
    arn = runtime.function_env(WORKER)["BULKAPI_PROVIDER_SECRET_ARN"]
    secrets = client("secretsmanager")
    secrets.put_secret_value(SecretId=arn, SecretString=json.dumps({"hibp_api_key": "from-the-secret"}))
    try:
        # When the sources are built from settings that name the secret but hold no key
        sources = enrichment.build(
            EnrichSettings(provider_secret_arn=arn, cache_table=runtime.function_env(WORKER)["BULKAPI_CACHE_TABLE"])
        )
        # Then darkweb is on (the key came from the secret) and search stays off
        assert sources.hibp is not None and sources.search is None
    finally:
        secrets.put_secret_value(SecretId=arn, SecretString="{}")
    # And with the secret empty again (once the 5-minute secret cache is gone), darkweb is off
    parameters.clear_caches()
    fresh = enrichment.build(EnrichSettings(provider_secret_arn=arn))
    assert fresh.hibp is None

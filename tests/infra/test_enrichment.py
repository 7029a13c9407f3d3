"""The answer cache table, the provider keys secret, and the enrichment settings of the enriching functions."""

from __future__ import annotations

from aws_cdk.assertions import Match, Template

from infra.enrichment import inline_rounds
from tests.infra.conftest import Synth


def _env(synth: Synth, fn: object) -> dict[str, object]:
    return dict(synth.template["Resources"][synth.logical_id(fn)]["Properties"]["Environment"]["Variables"])


def test_cache_table_is_keyed_by_source_and_query_and_expires_by_ttl(synth: Synth, template: Template) -> None:
    cache = synth.template["Resources"][synth.logical_id(synth.stack.enrichment.cache)]["Properties"]
    # Then one string key, on demand, and DynamoDB's TTL on the attribute the adapter writes
    assert cache["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert cache["BillingMode"] == "PAY_PER_REQUEST"
    assert cache["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    # And the provider keys secret starts as an empty JSON object (operators fill it in)
    template.has_resource_properties("AWS::SecretsManager::Secret", Match.object_like({"SecretString": "{}"}))


def test_worker_and_stream_get_the_cache_the_secret_and_providers_off_by_default(synth: Synth) -> None:
    cache_ref = {"Ref": synth.logical_id(synth.stack.enrichment.cache)}
    secret_ref = {"Ref": synth.logical_id(synth.stack.enrichment.secret)}
    for fn in (synth.stack.pipeline.worker, synth.stack.streaming.function):
        env = _env(synth, fn)
        assert env["BULKAPI_CACHE_TABLE"] == cache_ref
        assert env["BULKAPI_PROVIDER_SECRET_ARN"] == secret_ref
        assert env["BULKAPI_CACHE_TTL_SECONDS"] == str(synth.config.cache_ttl_seconds) == "86400"
        # And HIBP's rate is shared out: each of the worker's environments limits itself to its share of the plan
        assert float(str(env["BULKAPI_HIBP_REQUESTS_PER_MINUTE"])) * synth.config.worker_max_concurrency == 10
        assert env["BULKAPI_DNS_ENABLED"] == env["BULKAPI_RDAP_ENABLED"] == env["BULKAPI_WEBSITE_ENABLED"] == "false"
        # And no API key is ever in a function's environment: keys live in the secret
        assert not {var for var in env if var.endswith("_API_KEY")}


def test_each_enriching_function_can_spend_its_provider_budget_and_still_end_within_its_timeout(synth: Synth) -> None:
    # The worker: a batch's time per provider fits its timeout (4 batches x 2 sources x 12 s < 80% of 120 s)
    worker = _env(synth, synth.stack.pipeline.worker)
    batches = synth.config.worker_batch_size
    assert (
        batches * 2 * float(str(worker["BULKAPI_PROVIDER_BUDGET_SECONDS"])) <= 0.8 * synth.config.worker_timeout_seconds
    )
    # The stream: the largest inline request's rounds of calls, two sources each, fit its own timeout
    stream_fn = synth.stack.streaming.function
    stream = _env(synth, stream_fn)
    timeout = synth.template["Resources"][synth.logical_id(stream_fn)]["Properties"]["Timeout"]
    spent = inline_rounds() * 2 * float(str(stream["BULKAPI_PROVIDER_BUDGET_SECONDS"]))
    assert 0 < spent <= 0.8 * timeout
    assert float(str(stream["BULKAPI_PROVIDER_BUDGET_SECONDS"])) < float(str(worker["BULKAPI_PROVIDER_BUDGET_SECONDS"]))

"""The emulation counts requests by who signed them, so a benchmark can tell a deployment's requests from the
local runtime's own."""

from __future__ import annotations

from local.runtime import LocalRuntime


def test_requests_are_counted_by_the_principal_that_signed_them(runtime: LocalRuntime) -> None:
    assert runtime.emulation is not None
    worker = runtime.function_id("functions.handlers.worker.lambda_handler")
    worker_name = runtime.topology.functions[worker].name  # type: ignore[union-attr]
    before = runtime.emulation.counts_by_principal()
    key = {"pk": {"S": "COUNTS"}, "sk": {"S": "X"}}
    runtime.function_client("dynamodb", worker).get_item(TableName=runtime.table, Key=key)
    runtime.client("dynamodb").get_item(TableName=runtime.table, Key=key)
    runtime.client("dynamodb").get_item(TableName=runtime.table, Key=key)
    after = runtime.emulation.counts_by_principal()

    def grew(name: str) -> int:
        return after.get(name, {}).get("dynamodb.GetItem", 0) - before.get(name, {}).get("dynamodb.GetItem", 0)

    assert grew(worker_name) == 1
    assert grew("runtime") == 2

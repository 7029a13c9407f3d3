"""The local runtime composes each function from exactly its own template environment, never a merged one."""

from __future__ import annotations

import os

from functions.settings import PREFIX, env_names
from local.runtime import LocalRuntime, settings_model


def test_each_function_sees_only_the_settings_its_model_declares(runtime: LocalRuntime) -> None:
    assert runtime.topology is not None
    functions = [fn for fn in runtime.topology.functions.values() if settings_model(fn.handler) is not None]
    assert len(functions) >= 10
    for fn in functions:
        model = settings_model(fn.handler)
        assert model is not None
        declared = set(env_names(model).values())
        own = {var for var in fn.env if var.startswith(PREFIX)}
        # Then a function's settings are its model's, and nothing of another function's leaks in
        assert own <= declared, (fn.name, sorted(own - declared))
    by_handler = {fn.handler.rsplit(".", 2)[-2] if "." in fn.handler else "stream": fn.env for fn in functions}
    # The suite's override of the splitter's batch size reaches the splitter only
    assert by_handler["splitter"]["BULKAPI_ROWS_PER_BATCH"] == "100"
    assert [name for name, env in by_handler.items() if "BULKAPI_ROWS_PER_BATCH" in env] == ["splitter"]
    # Local webhooks and fetches may go to localhost: set where a model has the setting, nowhere else
    private = sorted(name for name, env in by_handler.items() if env.get("BULKAPI_ALLOW_PRIVATE_TARGETS") == "true")
    assert private == ["api", "fetcher", "webhooks"]
    # The webhook sender links to this API (known once the gateway listened); the worker knows nothing of it
    assert by_handler["webhooks"]["BULKAPI_API_BASE_URL"] == runtime.base_url
    assert "BULKAPI_API_BASE_URL" not in by_handler["worker"]


def test_no_function_setting_is_in_the_process_environment(runtime: LocalRuntime) -> None:
    # The process environment carries the emulation's endpoint and Powertools' own variables, not settings
    leaked = {"BULKAPI_JOBS_TABLE", "BULKAPI_BUCKET", "BULKAPI_WORK_QUEUE_URL", "BULKAPI_ROWS_PER_BATCH"}
    assert leaked.isdisjoint(os.environ)
    assert os.environ["AWS_ENDPOINT_URL"] == runtime.endpoint

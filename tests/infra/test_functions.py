"""Every function: its environment against its settings model, the shared defaults, the dependency layer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_cdk import DockerImage
from packaging.requirements import Requirement

from functions.settings import env_names
from infra import layer as layer_module
from infra.functions import (
    HANDLER_SETTINGS,
    METRICS_NAMESPACE,
    function_environment,
    runtime_environment,
    tracing_environment,
)
from infra.streaming import START_COMMAND, WEB_ADAPTER_ENVIRONMENT
from tests.infra.conftest import Synth, synthesize

HANDLER_PREFIX = "functions.handlers."
# Functions whose Lambda handler is a start script, by the settings model they read.
START_SCRIPTS = {START_COMMAND: "stream"}
# What the start-script functions set besides their settings: the Lambda Web Adapter's variables.
RUNTIME_ENV = {"stream": WEB_ADAPTER_ENVIRONMENT}


def _settings_key(handler: str) -> str | None:
    if handler in START_SCRIPTS:
        return START_SCRIPTS[handler]
    if handler.startswith(HANDLER_PREFIX) and handler.endswith(".lambda_handler"):
        return handler.removeprefix(HANDLER_PREFIX).removesuffix(".lambda_handler")
    return None


def _project_functions(synth: Synth) -> dict[str, tuple[str, dict[str, Any]]]:
    """The project's functions (not CDK's own helpers), by logical id: (settings key, properties)."""
    found = {}
    for lid, res in synth.resources("AWS::Lambda::Function").items():
        key = _settings_key(str(res["Properties"]["Handler"]))
        if key is not None:
            found[lid] = (key, res["Properties"])
    return found


def test_every_function_environment_is_exactly_its_settings_model(synth: Synth) -> None:
    functions = _project_functions(synth)
    assert {key for key, _ in functions.values()} == set(HANDLER_SETTINGS)

    for lid, (key, props) in functions.items():
        model = HANDLER_SETTINGS[key]
        env = props["Environment"]["Variables"]
        names = env_names(model)
        required = {names[f] for f, info in model.model_fields.items() if info.is_required()}
        runtime = {**RUNTIME_ENV.get(key, {}), **tracing_environment(synth.config.tracing)}
        # Then every required setting has a value, the runtime's variables are exact, and nothing else is set
        assert required <= set(env), (lid, required - set(env))
        assert set(env) <= set(names.values()) | {"POWERTOOLS_METRICS_NAMESPACE"} | set(runtime), lid
        assert {var: env.get(var) for var in runtime} == runtime, lid
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == METRICS_NAMESPACE


def test_powertools_variables_shared_by_functions_have_one_value(synth: Synth) -> None:
    # Settings (BULKAPI_*) are each function's own: the local runtime composes every function from its own
    # environment. Powertools reads its variables once per process, and the local runtime runs several functions
    # in one process: those must mean one thing.
    seen: dict[str, object] = {}
    for lid, (_, props) in _project_functions(synth).items():
        for var, value in props["Environment"]["Variables"].items():
            if var.startswith("POWERTOOLS_"):
                assert seen.setdefault(var, value) == value, (lid, var)


def test_functions_share_the_factory_defaults_and_the_layer(synth: Synth) -> None:
    layer_id = synth.logical_id(synth.stack.node.find_child("Dependencies").node.find_child("Layer"))
    for lid, (_, props) in _project_functions(synth).items():
        assert props["Runtime"] == "python3.12" and props["Architectures"] == ["arm64"], lid
        # X-Ray only when bulkapi:tracing is on (test_tracing_switch_turns_x_ray_on_everywhere)
        assert props.get("TracingConfig") == ({"Mode": "Active"} if synth.config.tracing else None), lid
        assert props["LoggingConfig"]["LogFormat"] == "JSON", lid
        # The dependency layer first; the stream function adds the Lambda Web Adapter (tests/infra/test_streaming.py)
        assert props["Layers"][0] == {"Ref": layer_id}, lid
        assert len(props["Layers"]) == (2 if props["Handler"] in START_SCRIPTS else 1), lid
    layer = synth.template["Resources"][layer_id]["Properties"]
    assert layer["CompatibleArchitectures"] == ["arm64"] and layer["CompatibleRuntimes"] == ["python3.12"]


def test_missing_or_unknown_settings_fail_the_synth() -> None:
    with pytest.raises(ValueError, match="jobs_table"):
        function_environment("webhooks", {"bucket": "b"})
    with pytest.raises(ValueError, match="not fields"):
        function_environment(
            "webhooks", {"bucket": "b", "jobs_table": "t", "retry_queue_url": "r", "work_queue_url": "q"}
        )


def test_runtime_variables_cannot_carry_or_replace_settings() -> None:
    settings_env = function_environment("stream", {"jobs_table": "t"})
    assert runtime_environment("stream", settings_env, {"AWS_LWA_PORT": "8080"})["AWS_LWA_PORT"] == "8080"
    # A BULKAPI_* variable only ever comes from the settings model
    with pytest.raises(ValueError, match="cannot be a runtime variable"):
        runtime_environment("stream", settings_env, {"BULKAPI_INLINE_CONCURRENCY": "8"})
    with pytest.raises(ValueError, match="cannot be a runtime variable"):
        runtime_environment("stream", settings_env, {"POWERTOOLS_METRICS_NAMESPACE": "other"})


def test_the_layer_lock_pins_every_runtime_dependency_of_pyproject_with_hashes() -> None:
    # Given pyproject's runtime dependencies and the hash-locked requirements the layer is built from
    pins = layer_module.locked()
    entries = layer_module.lock_entries()
    # Then every dependency is pinned there, at a version its specifier allows (else: run ./dev lock)
    for requirement in map(Requirement, layer_module.requirements()):
        name = layer_module.canonical(requirement.name)
        assert name in pins, f"{requirement} is not in {layer_module.LOCK.name}: run ./dev lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (requirement, pins[name])
    # And the extras' packages too (aws-lambda-powertools[tracer] needs the X-Ray SDK)
    assert "aws-xray-sdk" in pins
    # And every package of the closure has one exact version and the hashes of its files
    assert set(entries) == set(pins) and len(pins) > len(layer_module.requirements())
    for name, entry in entries.items():
        assert "--hash=sha256:" in entry, name
    # And the sdist-only packages that are built here are among them
    assert {layer_module.canonical(n) for n in layer_module.BUILT_LOCALLY} <= set(pins)


def test_pip_installs_the_lock_for_lambda_with_hashes_checked(tmp_path: Path) -> None:
    lock = tmp_path / "lock.txt"
    lock.write_text("example==1.0 \\\n    --hash=sha256:" + "0" * 64 + "\n")

    command = layer_module.pip_command(lock, tmp_path / "python")

    assert command[command.index("--platform") + 1] == "manylinux2014_aarch64"
    assert command[command.index("--python-version") + 1] == "3.12"
    assert {"--only-binary=:all:", "--implementation", "cp", "--require-hashes", "--no-deps"} <= set(command)
    assert command[-2:] == ["-r", str(lock)]
    assert layer_module.lock_entries(lock) == {"example": "example==1.0 \\\n--hash=sha256:" + "0" * 64}
    # A changed lock is another layer build
    assert layer_module.layer_hash(lock.read_text()) != layer_module.layer_hash(lock.read_text() + "idna==3.20\n")


def test_local_bundling_copies_a_cached_build_without_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a cached build for this lock (so no network and no pip)
    lock = tmp_path / "lock.txt"
    lock.write_text("example==1.0\n")
    monkeypatch.setattr(layer_module, "CACHE", tmp_path / "cache")
    cached = tmp_path / "cache" / layer_module.layer_hash(lock.read_text()) / "python" / "example"
    cached.mkdir(parents=True)
    (cached / "__init__.py").write_text("VALUE = 1\n")

    # When CDK asks the local bundler for the asset
    out = tmp_path / "asset"
    bundled = layer_module.PipLayerBundling(lock).try_bundle(str(out), image=DockerImage.from_registry("local-only"))

    # Then it bundled locally, in Lambda's layer layout
    assert bundled is True
    assert (out / "python" / "example" / "__init__.py").read_text() == "VALUE = 1\n"


def test_tracing_switch_turns_x_ray_on_everywhere(tmp_path: Path) -> None:
    # Given -c bulkapi:tracing=true
    traced = synthesize(tmp_path, {"bulkapi:tracing": "true"})
    for lid, (_, props) in _project_functions(traced).items():
        # Then every function traces actively and Powertools' Tracer is not switched off
        assert props["TracingConfig"] == {"Mode": "Active"}, lid
        assert "POWERTOOLS_TRACE_DISABLED" not in props["Environment"]["Variables"], lid
    # And the API stage and the state machine trace too (bulkapi:tracing governs X-Ray everywhere)
    (stage,) = traced.resources("AWS::ApiGateway::Stage").values()
    (machine,) = traced.resources("AWS::StepFunctions::StateMachine").values()
    assert stage["Properties"]["TracingEnabled"] is True
    assert machine["Properties"]["TracingConfiguration"] == {"Enabled": True}
    # And the X-Ray permissions this needs are acknowledged, so cdk-nag stays clean
    assert traced.validation_error is None, traced.validation_error


def test_without_tracing_powertools_tracer_is_switched_off(synth: Synth) -> None:
    assert synth.config.tracing is False
    (stage,) = synth.resources("AWS::ApiGateway::Stage").values()
    (machine,) = synth.resources("AWS::StepFunctions::StateMachine").values()
    assert stage["Properties"]["TracingEnabled"] is False
    assert machine["Properties"]["TracingConfiguration"] == {"Enabled": False}
    for lid, (_, props) in _project_functions(synth).items():
        assert props["Environment"]["Variables"]["POWERTOOLS_TRACE_DISABLED"] == "true", lid

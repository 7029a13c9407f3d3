"""The dependency layer: pyproject.toml's `dependencies`, locked with hashes, installed for Lambda without Docker.

The layer is built from `infra/layer-requirements.txt`: every package of the runtime dependencies' closure, pinned
to one version, with the sha256 of each of its files, resolved for the Lambda platform (Linux arm64, CPython 3.12)
by `./dev lock` (uv pip compile). pip installs it with `--require-hashes`, so two machines that synthesize the same
commit ship the same bytes, and a changed file on the index fails the build. Refresh the lock after changing
pyproject's dependencies (tests/infra/test_layer.py fails while it does not cover them).

CDK asks a local bundler first; this one runs pip with `--platform/--only-binary` so every package comes as a
prebuilt wheel for Linux arm64 / CPython 3.12, whatever machine synthesizes. The result is cached in .cache/layer
by a hash of the lock, so a second synth is offline. Synth with `aws:cdk:bundling-stacks=[]` (tests, the local
runtime) skips bundling altogether.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
CACHE = ROOT / ".cache" / "layer"
LOCK = ROOT / "infra" / "layer-requirements.txt"
# Must match infra.functions.RUNTIME / ARCHITECTURE.
PLATFORM = "manylinux2014_aarch64"
# The python3.12 runtime is Amazon Linux 2023 (glibc 2.34): wheels built for glibc 2.28 run there too, and some
# packages publish only those for arm64 (pycares 5).
NEWER_PLATFORM = "manylinux_2_28_aarch64"
UV_PLATFORM = "aarch64-manylinux2014"
PYTHON_VERSION = "3.12"
# Pure-Python packages published only as an sdist: built into a wheel here (from the hash-checked sdist).
BUILT_LOCALLY = ("geoip2fast",)
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def canonical(name: str) -> str:
    """A distribution name as PyPI compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(lock: Path = LOCK) -> dict[str, str]:
    """The lock's pins, canonical name -> version."""
    pins = {}
    for line in lock.read_text().splitlines():
        match = _PIN.match(line.strip())
        if match:
            pins[canonical(match.group(1))] = match.group(2)
    return pins


def lock_entries(lock: Path = LOCK) -> dict[str, str]:
    """Each pin with its `--hash` lines, as requirement-file text, by canonical name."""
    entries: dict[str, list[str]] = {}
    name = None
    for line in lock.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _PIN.match(stripped)
        if match:
            name = canonical(match.group(1))
            entries[name] = [stripped]
        elif name is not None:
            entries[name].append(stripped)
    return {name: "\n".join(lines) for name, lines in entries.items()}


def lock_command(out: Path = LOCK) -> list[str]:
    """uv resolving pyproject's dependencies for the Lambda platform, every file's hash included."""
    return [
        sys.executable,
        "-m",
        "uv",
        "pip",
        "compile",
        str(PYPROJECT),
        "--python-version",
        PYTHON_VERSION,
        "--python-platform",
        UV_PLATFORM,
        "--generate-hashes",
        "--no-annotate",
        "--custom-compile-command",
        "./dev lock",
        "--output-file",
        str(out),
    ]


def requirements(pyproject: Path = PYPROJECT) -> list[str]:
    """The runtime dependencies the functions import, as pyproject.toml declares them."""
    project = tomllib.loads(pyproject.read_text())["project"]
    return [str(req) for req in project.get("dependencies", [])]


def layer_hash(lock_text: str) -> str:
    """Identifies a layer build: the lock and the target platform."""
    return hashlib.sha256("\n".join([PLATFORM, NEWER_PLATFORM, PYTHON_VERSION, lock_text]).encode()).hexdigest()[:20]


def wheel_command(requirements_file: Path, wheelhouse: Path) -> list[str]:
    """pip wheel for the sdist-only packages (BUILT_LOCALLY), their sdists checked against the lock's hashes."""
    return [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--require-hashes",
        "--wheel-dir",
        str(wheelhouse),
        "-r",
        str(requirements_file),
    ]


# What every pip install into the layer folder starts with: quiet, no bytecode (Lambda compiles on import).
_PIP_INSTALL = ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]


def pip_command(requirements_file: Path, target: Path) -> list[str]:
    """pip, asked for wheels of the Lambda platform only, each checked against the lock's hashes."""
    return [
        sys.executable,
        *_PIP_INSTALL,
        "--platform",
        PLATFORM,
        "--platform",
        NEWER_PLATFORM,
        "--implementation",
        "cp",
        "--python-version",
        PYTHON_VERSION,
        "--only-binary=:all:",
        "--no-deps",
        "--require-hashes",
        "--target",
        str(target),
        "-r",
        str(requirements_file),
    ]


def local_wheels_command(wheels: list[Path], target: Path) -> list[str]:
    """pip installing the pure wheels built here (from hash-checked sdists), offline."""
    return [sys.executable, *_PIP_INSTALL, "--no-deps", "--no-index", "--target", str(target), *map(str, wheels)]


def build_layer(lock: Path, out_dir: Path) -> Path:
    """Install the lock into out_dir/python (the layout Lambda puts on sys.path), reusing the cache when it can."""
    cached = CACHE / layer_hash(lock.read_text())
    if not (cached / "python").is_dir():
        staging = cached.with_name(cached.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        entries = lock_entries(lock)
        local = {name: entries.pop(canonical(name)) for name in BUILT_LOCALLY if canonical(name) in entries}
        (staging / "binary.txt").write_text("\n".join(entries.values()) + "\n")
        (staging / "local.txt").write_text("\n".join(local.values()) + "\n")
        wheelhouse = staging / "wheels"
        subprocess.run(pip_command(staging / "binary.txt", staging / "python"), check=True)  # noqa: S603
        if local:
            subprocess.run(wheel_command(staging / "local.txt", wheelhouse), check=True)  # noqa: S603
            wheels = sorted(wheelhouse.glob("*.whl"))
            # A wheel built here for this machine would be the wrong binary in Lambda: only pure ones may ship.
            impure = [w.name for w in wheels if not w.name.endswith("-none-any.whl")]
            if impure:
                raise RuntimeError(f"{impure} are not pure-Python wheels: they cannot be built for Lambda here")
            subprocess.run(local_wheels_command(wheels, staging / "python"), check=True)  # noqa: S603
        shutil.rmtree(wheelhouse, ignore_errors=True)
        # Console scripts are useless in a layer and would name the build machine's interpreter.
        shutil.rmtree(staging / "python" / "bin", ignore_errors=True)
        staging.replace(cached)
    shutil.copytree(cached / "python", out_dir / "python", dirs_exist_ok=True)
    return out_dir / "python"


def directory_size(path: Path) -> int:
    """Bytes of all files under path (the unzipped layer size Lambda counts against its 250 MB limit)."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


@jsii.implements(ILocalBundling)
class PipLayerBundling:
    """CDK local bundling: build the layer with pip on this machine instead of in a Docker image."""

    def __init__(self, lock: Path) -> None:
        self.lock = lock

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_options: Any) -> bool:
        """Build into output_dir; True tells CDK that no Docker bundling is needed."""
        build_layer(self.lock, Path(output_dir))
        return True


class DependencyLayerConstruct(Construct):
    """The LayerVersion every function uses."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            description="bulkapi runtime dependencies (infra/layer-requirements.txt)",
            compatible_runtimes=[lambda_.Runtime.PYTHON_3_12],
            compatible_architectures=[lambda_.Architecture.ARM_64],
            code=lambda_.Code.from_asset(
                str(Path(__file__).resolve().parent),
                # The source directory is not used: the hash of the lock identifies the asset.
                asset_hash_type=AssetHashType.CUSTOM,
                asset_hash=layer_hash(LOCK.read_text()),
                bundling=BundlingOptions(
                    # Never pulled: local bundling always succeeds or raises.
                    image=DockerImage.from_registry("local-only"),
                    local=PipLayerBundling(LOCK),
                ),
            ),
        )


if __name__ == "__main__":
    if sys.argv[1:2] == ["lock"]:
        # ./dev lock: re-resolve pyproject's dependencies into the hash-locked requirements file.
        sys.exit(subprocess.run(lock_command(), check=False).returncode)  # noqa: S603
    # Build the layer by hand and print its unzipped size: python -m infra.layer <out_dir>
    out = build_layer(LOCK, Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / ".cache" / "layer-out"))
    print(f"{out}: {directory_size(out) / 1e6:.1f} MB unzipped")

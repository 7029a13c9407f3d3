"""The dependency layer: pyproject.toml's `dependencies`, installed for the Lambda platform without Docker.

CDK asks a local bundler first; this one runs pip with `--platform/--only-binary` so every package comes as a
prebuilt wheel for Linux arm64 / CPython 3.12, whatever machine synthesizes. The result is cached in .cache/layer
by a hash of the requirement list, so a second synth is offline. Synth with `aws:cdk:bundling-stacks=[]` (tests,
the local runtime) skips bundling altogether.
"""

from __future__ import annotations

import hashlib
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
# Must match infra.functions.RUNTIME / ARCHITECTURE.
PLATFORM = "manylinux2014_aarch64"
PYTHON_VERSION = "3.12"


def requirements(pyproject: Path = PYPROJECT) -> list[str]:
    """The runtime dependencies the functions import, as pyproject.toml declares them."""
    project = tomllib.loads(pyproject.read_text())["project"]
    return [str(req) for req in project.get("dependencies", [])]


def layer_hash(reqs: list[str]) -> str:
    """Identifies a layer build: the requirement list and the target platform."""
    return hashlib.sha256("\n".join([PLATFORM, PYTHON_VERSION, *reqs]).encode()).hexdigest()[:20]


def wheel_command(reqs: list[str], wheelhouse: Path) -> list[str]:
    """pip wheel for the top-level requirements: turns a pure-Python sdist-only package (geoip2fast) into a wheel."""
    return [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--wheel-dir",
        str(wheelhouse),
        *reqs,
    ]


def pip_command(reqs: list[str], target: Path, wheelhouse: Path) -> list[str]:
    """pip, asked for wheels of the Lambda platform only; the wheelhouse adds the locally built pure wheels.

    A wheel built here for this machine's platform (a compiled sdist) does not match --platform and is ignored,
    so such a package fails the build loudly instead of shipping the wrong binary.
    """
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--platform",
        PLATFORM,
        "--implementation",
        "cp",
        "--python-version",
        PYTHON_VERSION,
        "--only-binary=:all:",
        "--find-links",
        str(wheelhouse),
        "--target",
        str(target),
        *reqs,
    ]


def build_layer(reqs: list[str], out_dir: Path) -> Path:
    """Install `reqs` into out_dir/python (the layout Lambda puts on sys.path), reusing the cache when it can."""
    cached = CACHE / layer_hash(reqs)
    if not (cached / "python").is_dir():
        staging = cached.with_name(cached.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        wheelhouse = staging / "wheels"
        subprocess.run(wheel_command(reqs, wheelhouse), check=True)  # noqa: S603 - our interpreter, our args
        subprocess.run(pip_command(reqs, staging / "python", wheelhouse), check=True)  # noqa: S603
        shutil.rmtree(wheelhouse)
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

    def __init__(self, reqs: list[str]) -> None:
        self.reqs = reqs

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_options: Any) -> bool:
        """Build into output_dir; True tells CDK that no Docker bundling is needed."""
        build_layer(self.reqs, Path(output_dir))
        return True


class DependencyLayerConstruct(Construct):
    """The LayerVersion every function uses."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        reqs = requirements()
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            description="bulkapi runtime dependencies (pyproject.toml)",
            compatible_runtimes=[lambda_.Runtime.PYTHON_3_12],
            compatible_architectures=[lambda_.Architecture.ARM_64],
            code=lambda_.Code.from_asset(
                str(Path(__file__).resolve().parent),
                # The source directory is not used: the hash of the requirements identifies the asset.
                asset_hash_type=AssetHashType.CUSTOM,
                asset_hash=layer_hash(reqs),
                bundling=BundlingOptions(
                    # Never pulled: local bundling always succeeds or raises.
                    image=DockerImage.from_registry("local-only"),
                    local=PipLayerBundling(reqs),
                ),
            ),
        )


if __name__ == "__main__":
    # Build the layer by hand and print its unzipped size: python -m infra.layer <out_dir>
    out = build_layer(requirements(), Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / ".cache" / "layer-out"))
    print(f"{out}: {directory_size(out) / 1e6:.1f} MB unzipped")

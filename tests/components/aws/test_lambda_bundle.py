"""`agent-infra build`: reproducible, runtime-only, limit-checked Lambda bundles.

The builds here install a tiny locally made wheel (no network, a few seconds); the real build
(`agent-infra build`, the `app` extra for python3.12/arm64) is run by hand and reported in
docs/serverless.md.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

import pytest
from agent_infra.components.errors import ConfigError
from typer.testing import CliRunner

from agent_infra import lambda_bundle
from agent_infra.cli import app
from agent_infra.lambda_bundle import (
    SERVER_ONLY,
    Bundle,
    build_bundle,
    check_limits,
    platforms,
    runtime_requirements,
)

ROOT = Path(__file__).resolve().parents[3]


def make_wheel(directory: Path, name: str = "tinydep", version: str = "1.0") -> Path:
    """A minimal pure-Python wheel (py3-none-any), built by hand."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": b"VALUE = 42\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return wheel


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    directory = tmp_path / "wheels"
    directory.mkdir()
    make_wheel(directory)
    return directory


def build(tmp_path: Path, wheels: Path, out: str) -> Bundle:
    return build_bundle("python3.12", "arm64", out_dir=tmp_path / out, project=ROOT, requirements=["tinydep"],
                        cache_dir=tmp_path / "cache", find_links=wheels)


def test_same_input_same_hash_and_clean_contents(tmp_path: Path, wheels: Path) -> None:
    first = build(tmp_path, wheels, "a")
    (ROOT / "agent_app" / "__pycache__").mkdir(exist_ok=True)  # present after any test run: never shipped
    second = build(tmp_path, wheels, "b")
    again = build(tmp_path, wheels, "a")  # pinned by a/lambda-python3.12-arm64.lock, installed from the cache
    assert first.sha256 == second.sha256 == again.sha256
    assert first.path.name == "lambda-python3.12-arm64.zip" and first.requirements == ("tinydep==1.0",)
    assert (tmp_path / "a" / "lambda-python3.12-arm64.lock").read_text() == "tinydep==1.0\n"
    with zipfile.ZipFile(first.path) as zf:
        infos = zf.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names)
    assert "agent_app/lambda_handler.py" in names and "tinydep/__init__.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or n.endswith("/RECORD")]
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}


def test_runtime_requirements_are_the_app_extra_without_server_or_dev_packages() -> None:
    reqs = runtime_requirements()
    names = {r.split(">")[0].split("[")[0].split("=")[0] for r in reqs}
    assert {"fastapi", "mangum", "aws-lambda-powertools", "boto3", "pydantic-settings"} <= names
    assert not names & SERVER_ONLY
    assert not names & {"pytest", "moto", "ruff", "mypy", "celery", "hypothesis"}


def test_platform_tags_follow_runtime_and_architecture() -> None:
    assert platforms("python3.12", "arm64")[0] == "manylinux2014_aarch64"
    assert "manylinux_2_34_x86_64" in platforms("python3.13", "x86_64")
    assert platforms("python3.11", "x86_64") == ["manylinux2014_x86_64"]  # Amazon Linux 2: glibc 2.26
    with pytest.raises(ConfigError, match="--architecture: 'arm' is not a Lambda architecture"):
        platforms("python3.12", "arm")
    with pytest.raises(ConfigError, match=r"--runtime: 'python2\.7'"):
        platforms("python2.7", "arm64")


def test_limits_are_enforced_with_a_fix() -> None:
    mb = 1024 * 1024
    check_limits(Bundle(Path("b.zip"), "x", 49 * mb, 200 * mb, 1, ()))
    with pytest.raises(ConfigError, match=r"51\.0 MB zipped exceeds the 50 MB direct-upload limit"):
        check_limits(Bundle(Path("b.zip"), "x", 51 * mb, 200 * mb, 1, ()))
    with pytest.raises(ConfigError, match=r"251\.0 MB unzipped exceeds Lambda's 250 MB limit"):
        check_limits(Bundle(Path("b.zip"), "x", 40 * mb, 251 * mb, 1, ()))


def test_cli_build_prints_size_and_hash(tmp_path: Path, wheels: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = lambda_bundle.build_bundle

    def offline(runtime: str, architecture: str, **kwargs: object) -> Bundle:
        return real(runtime, architecture, out_dir=kwargs["out_dir"], project=ROOT,  # type: ignore[arg-type]
                    requirements=["tinydep"], cache_dir=tmp_path / "cache", find_links=wheels)

    monkeypatch.setattr(lambda_bundle, "build_bundle", offline)
    result = CliRunner().invoke(app, ["build", "--architecture", "x86_64", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    bundle = tmp_path / "o" / "lambda-python3.12-x86_64.zip"
    assert f"built {bundle}" in result.output
    assert f"sha256  {lambda_bundle.sha256_of(bundle)}" in result.output and "MB zipped" in result.output
    bad = CliRunner().invoke(app, ["build", "--architecture", "sparc"])
    assert bad.exit_code == 2 and "--architecture: 'sparc' is not a Lambda architecture" in bad.output


def test_bytecode_is_shipped_reproducibly_when_the_interpreter_matches(tmp_path: Path, wheels: Path) -> None:
    import sys

    runtime = f"python{sys.version_info.major}.{sys.version_info.minor}"
    bundles = [build_bundle(runtime, "x86_64", out_dir=tmp_path / out, project=ROOT, requirements=["tinydep"],
                            cache_dir=tmp_path / "cache", find_links=wheels) for out in ("a", "b")]
    assert bundles[0].sha256 == bundles[1].sha256
    with zipfile.ZipFile(bundles[0].path) as zf:
        names = zf.namelist()
    tag = sys.implementation.cache_tag
    assert f"agent_app/__pycache__/lambda_handler.{tag}.pyc" in names
    assert f"tinydep/__pycache__/__init__.{tag}.pyc" in names

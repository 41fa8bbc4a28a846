"""Settings contract, secrets by value or Secrets Manager ARN (moto server), and `agent-app serve`."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import boto3
import httpx
import pytest
from agent_infra.agent_app import settings as settings_mod
from agent_infra.agent_app.settings import ENV_CONTRACT, Settings
from pydantic import ValidationError

from tests.app.conftest import ROOT, MotoServer, free_port, wait_port


def test_env_contract_names_match_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    assert {"AGENT_QUEUE_URL", "AGENT_STATE_TABLE", "AGENT_LLM_API_KEY_SECRET_ARN", "REDIS_URL"} <= ENV_CONTRACT
    fields = set(Settings.model_fields)
    for name in ENV_CONTRACT - {"REDIS_URL", "DATABASE_URL"}:
        assert name.removeprefix("AGENT_").lower() in fields, name
    monkeypatch.setenv("REDIS_URL", "redis://plain:6379/0")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db/agent")
    monkeypatch.setenv("AGENT_QUEUE_BACKEND", "redis")
    s = Settings()
    assert s.redis_url == "redis://plain:6379/0" and s.sqlalchemy_url == "postgresql+asyncpg://u@db/agent"


def test_placeholder_secrets_refused_outside_dev() -> None:
    with pytest.raises(ValidationError, match="AGENT_API_KEYS: placeholder"):
        Settings(environment="prod", api_keys="changeme")  # type: ignore[arg-type]
    assert Settings(environment="dev", api_keys="changeme").api_key_set() == {"changeme"}  # type: ignore[arg-type]


@pytest.fixture
def moto_endpoint(moto_server: MotoServer) -> str:
    """The session's moto server (conftest), as the endpoint URL the settings test points boto3 at."""
    return moto_server.endpoint


def test_secret_arn_resolved_lazily_through_secrets_manager(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(k, v)
    sm = boto3.client("secretsmanager")
    plain = sm.create_secret(Name="agent/api-keys", SecretString="k1,k2")["ARN"]
    wrapped = sm.create_secret(Name="agent/llm", SecretString='{"llm_api_key": "sk-live"}')["ARN"]
    monkeypatch.setenv("AGENT_API_KEYS_SECRET_ARN", plain)
    monkeypatch.setenv("AGENT_LLM_API_KEY_SECRET_ARN", wrapped)
    settings_mod._secret_cache.clear()
    s = Settings()
    assert s.api_key_set() == {"k1", "k2"} and s.secret("llm_api_key") == "sk-live"
    sm.update_secret(SecretId=plain, SecretString="rotated")
    assert s.api_key_set() == {"k1", "k2"}  # cached after first use
    monkeypatch.setenv("AGENT_API_KEYS", "direct")  # a value injected directly wins
    assert Settings().api_key_set() == {"direct"}


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_")} | (env or {})
    full["PYTHONPATH"] = str(ROOT)
    return subprocess.Popen(
        [sys.executable, "-m", "agent_infra.agent_app.cli", "serve", *args],
        env=full,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_serve_refuses_public_bind_without_keys() -> None:
    proc = _serve("--host", "0.0.0.0", "--port", str(free_port()))
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "refusing to start" in out
    proc = _serve("--port", str(free_port()), env={"AGENT_ENVIRONMENT": "prod"})
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "refusing to start" in out


@pytest.mark.slow
def test_serve_embedded_defaults_warns_and_runs(tmp_path: object) -> None:
    port = free_port()
    proc = _serve("--port", str(port), env={"AGENT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/serve.db"})
    try:
        wait_port(port, 30)
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/readyz").status_code == 200
        r = httpx.post(f"{base}/webhook", json={"message": "10/4"})
        assert r.status_code == 202
        deadline = time.monotonic() + 15
        while httpx.get(f"{base}{r.headers['location']}").json()["status"] != "success":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert httpx.get(f"{base}{r.headers['location']}").json()["result"] == "The answer is 2.5."
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert "NO AUTHENTICATION" in out

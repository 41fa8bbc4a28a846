"""Settings read from files in the secrets directory (Kubernetes mounts the app Secret there)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
from agent_infra.agent_app.settings import SECRETS_DIR, SECRETS_DIR_ENV, Settings


@pytest.fixture
def secrets_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("AGENT_") or name in ("REDIS_URL", "DATABASE_URL"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(SECRETS_DIR_ENV, str(tmp_path))
    return tmp_path


def test_secrets_and_urls_come_from_files_with_the_newline_stripped(secrets_dir: Path) -> None:
    (secrets_dir / "AGENT_API_KEYS").write_text("k1,k2\n")
    (secrets_dir / "AGENT_WEBHOOK_SIGNING_SECRET").write_text("whsec_abc\n")
    (secrets_dir / "AGENT_REDIS_URL").write_text("redis://:pw@agent-redis:6379/0\n")
    (secrets_dir / "AGENT_DATABASE_URL").write_text("postgresql://agent:pw@agent-postgres:5432/agent\n")
    s = Settings()
    assert s.api_key_set() == {"k1", "k2"}
    assert s.secret("webhook_signing_secret") == "whsec_abc"
    assert s.redis_url == "redis://:pw@agent-redis:6379/0"
    assert s.sqlalchemy_url == "postgresql+asyncpg://agent:pw@agent-postgres:5432/agent"
    assert s.llm_api_key is None  # a missing file is simply unset


def test_kubernetes_layout_symlinks_are_followed(secrets_dir: Path) -> None:
    # A mounted Secret volume: each key is a symlink into a timestamped `..data` directory.
    data = secrets_dir / "..2024_01_01_00_00_00.000000000"
    data.mkdir()
    (data / "AGENT_LLM_API_KEY").write_text("sk-real\n")
    (secrets_dir / "..data").symlink_to(data.name)
    (secrets_dir / "AGENT_LLM_API_KEY").symlink_to("..data/AGENT_LLM_API_KEY")
    assert Settings().secret("llm_api_key") == "sk-real"


def test_environment_wins_over_a_file(secrets_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (secrets_dir / "AGENT_API_KEYS").write_text("from-file\n")
    monkeypatch.setenv("AGENT_API_KEYS", "from-env")
    assert Settings().api_key_set() == {"from-env"}


def test_placeholder_in_a_file_is_refused_outside_dev(secrets_dir: Path) -> None:
    (secrets_dir / "AGENT_ENVIRONMENT").write_text("prod\n")
    (secrets_dir / "AGENT_API_KEYS").write_text("changeme\n")
    with pytest.raises(ValueError, match="AGENT_API_KEYS: placeholder"):
        Settings()


def test_missing_directory_is_silent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRETS_DIR_ENV, str(tmp_path / "absent"))
    monkeypatch.delenv("AGENT_API_KEYS", raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Settings().api_keys is None


def test_default_directory_is_the_one_the_kubernetes_components_mount() -> None:
    from agent_infra.components.kubernetes.secrets import SECRETS_MOUNT_PATH

    assert SECRETS_MOUNT_PATH == SECRETS_DIR

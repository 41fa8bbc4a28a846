"""The local topology on one machine with Docker: `ContainerAgent` and `HybridAgent`.

    network "<name>-backend" (internal: no route out)      network "<name>-egress"
      redis (auth, AOF volume)                                api  -> 127.0.0.1:8000
      postgres + pgvector (hybrid, volume)                    worker
      qdrant (vectors.backend: qdrant)
      api, worker (both networks: they reach the data and the LLM provider)

Every container is health-checked, restarts unless stopped, and the app containers run as a
non-root user on a read-only root filesystem with all capabilities dropped. The API is published
on loopback only unless `docker.bind_address` says otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_docker as docker

from ..agent_image import AgentImage
from ..app_env import QUEUE_GROUP, QUEUE_STREAM, WORKER_HEALTH_PORT, environment_name, http_health_check
from ..config import DeploymentConfig, DockerOptions, SecretRef, load_deployment
from ..errors import ConfigError

REDIS_IMAGE = "redis:7.4.2-alpine"
POSTGRES_IMAGE = "pgvector/pgvector:0.8.0-pg17"
QDRANT_IMAGE = "qdrant/qdrant:v1.13.4-unprivileged"
APP_USER = "10001:10001"
REDIS_USER = "999:1000"
"""The `redis` user of the official alpine image (uid 999, gid 1000)."""
POSTGRES_USER = "999:999"
"""The `postgres` user of the official Debian postgres image that pgvector/pgvector builds on."""
POSTGRES_MOUNT = "/var/lib/postgresql/data"
POSTGRES_PGDATA = f"{POSTGRES_MOUNT}/pgdata"


def _secret_value(variable: str, ref: SecretRef) -> pulumi.Output[str]:
    if not ref.config:
        raise ConfigError(f"{variable}: the docker topology reads secrets from `pulumi config set --secret` only; "
                          "use {config: KEY}")
    value = pulumi.Config().get_secret(ref.config)
    if value is None:
        raise ConfigError(f"{variable}: config key {ref.config!r} is not set; run "
                          f"`pulumi config set --secret {ref.config} <value>`")
    return value


def _health(test: list[str], start_period: str = "20s") -> docker.ContainerHealthcheckArgs:
    return docker.ContainerHealthcheckArgs(tests=test, interval="15s", timeout="5s", retries=3,
                                           start_period=start_period)


class ContainerAgent(pulumi.ComponentResource):
    """API and worker containers with Redis (queue + state), on the local Docker engine."""

    outputs: dict[str, Any]
    """endpoint (`http://127.0.0.1:8000`), image_ref, network, queue_stream."""

    type_token = "agent-infra:docker:ContainerAgent"

    def __init__(self, name: str, config: DeploymentConfig | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        config = config if isinstance(config, DeploymentConfig) else load_deployment(dict(config))
        d = config.docker or DockerOptions()
        secrets = {var: _secret_value(f"app.secrets.{var}", ref) for var, ref in sorted(config.app.secrets.items())}
        redis_password = _secret_value("docker.redis_password", d.redis_password)
        postgres_password = (_secret_value("docker.postgres_password", d.postgres_password)
                             if config.database_enabled else None)
        super().__init__(self.type_token, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = [docker.ContainerLabelArgs(label=k, value=v)
                  for k, v in sorted(config.all_tags(pulumi.get_project(), pulumi.get_stack()).items())]

        self.backend = docker.Network(f"{name}-backend", name=f"{name}-backend", internal=True, opts=child)
        self.egress = docker.Network(f"{name}-egress", name=f"{name}-egress", opts=child)
        backend_only = [docker.ContainerNetworksAdvancedArgs(name=self.backend.name)]
        both = [*backend_only, docker.ContainerNetworksAdvancedArgs(name=self.egress.name)]

        def volume(role: str) -> docker.Volume:
            return docker.Volume(f"{name}-{role}", name=f"{name}-{role}", opts=child)

        def pinned(role: str, ref: str) -> docker.RemoteImage:
            return docker.RemoteImage(f"{name}-{role}-image", name=ref, keep_locally=True, opts=child)

        self.redis = docker.Container(
            f"{name}-redis", name=f"{name}-redis", image=pinned("redis", REDIS_IMAGE).image_id,
            # Append-only file on the named volume, fsync each second: an accepted task survives a
            # restart or crash of the container (tests/wiring/test_queue_durability.py).
            command=["sh", "-c", 'exec redis-server --requirepass "$REDIS_PASSWORD" --appendonly yes '
                     "--appendfsync everysec --dir /data --maxmemory-policy noeviction"],
            envs=[pulumi.Output.concat("REDIS_PASSWORD=", redis_password)],
            # The alpine image's `redis` user is 999 in group 1000 (alpine already has a gid 999):
            # https://github.com/docker-library/redis (Dockerfile template). /data is theirs.
            user=REDIS_USER, read_only=True, tmpfs={"/tmp": "rw,noexec,nosuid,size=64m"},
            networks_advanced=backend_only, restart="unless-stopped", memory=512,
            volumes=[docker.ContainerVolumeArgs(volume_name=volume("redis-data").name, container_path="/data")],
            healthcheck=_health(["CMD-SHELL", 'REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli ping | grep -q PONG']),
            capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"]),
            security_opts=["no-new-privileges:true"], labels=labels, opts=child)
        env: dict[str, str | pulumi.Output[str]] = {
            "AGENT_ENVIRONMENT": environment_name(config), "AGENT_BIND_HOST": "0.0.0.0",
            "AGENT_PORT": str(config.app.port), "AGENT_QUEUE_BACKEND": "redis", "AGENT_QUEUE_STREAM": QUEUE_STREAM,
            "AGENT_QUEUE_GROUP": QUEUE_GROUP, "AGENT_STATE_BACKEND": "redis",
            "AGENT_STATE_TTL_SECONDS": str(config.state.ttl_seconds),
            "AGENT_LLM_PROVIDER": config.app.llm_provider, "AGENT_LLM_MODEL": config.app.llm_model,
            "AGENT_RUN_TIMEOUT_SECONDS": str(config.timeouts.run_seconds),
            "AGENT_RATE_LIMIT_PER_MINUTE": str(config.rate_limits.per_key_per_minute),
            "AGENT_VECTOR_BACKEND": "memory",
            "AGENT_REDIS_URL": pulumi.Output.concat("redis://:", redis_password, f"@{name}-redis:6379/0"),
            **config.app.environment, **secrets}
        if config.app.llm_base_url:
            env["AGENT_LLM_BASE_URL"] = config.app.llm_base_url
        depends: list[pulumi.Resource] = [self.redis]
        self.postgres = self.qdrant = None
        if postgres_password is not None:
            self.postgres = docker.Container(
                f"{name}-postgres", name=f"{name}-postgres", image=pinned("postgres", POSTGRES_IMAGE).image_id,
                # PGDATA is a subdirectory of the volume: the entrypoint, running as the image's
                # postgres user (999:999, Debian), creates it with mode 0700 itself, which the volume
                # root (copied from the image, owned by postgres) allows without a chown.
                envs=["POSTGRES_USER=agent", "POSTGRES_DB=agent", f"PGDATA={POSTGRES_PGDATA}",
                      pulumi.Output.concat("POSTGRES_PASSWORD=", postgres_password)],
                user=POSTGRES_USER, read_only=True,
                tmpfs={"/tmp": "rw,noexec,nosuid,size=64m",
                       "/var/run/postgresql": "rw,noexec,nosuid,size=1m,mode=1777"},
                networks_advanced=backend_only, restart="unless-stopped", memory=1024, shm_size=128,
                volumes=[docker.ContainerVolumeArgs(volume_name=volume("postgres-data").name,
                                                    container_path=POSTGRES_MOUNT)],
                healthcheck=_health(["CMD-SHELL", "pg_isready -h 127.0.0.1 -U agent -d agent"], "30s"),
                capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"]),
                security_opts=["no-new-privileges:true"], labels=labels, opts=child)
            env["AGENT_DATABASE_URL"] = pulumi.Output.concat("postgresql://agent:", postgres_password,
                                                             f"@{name}-postgres:5432/agent")
            if config.vectors.backend == "pgvector":
                env["AGENT_VECTOR_BACKEND"] = "pgvector"
            depends.append(self.postgres)
        if config.vectors.backend == "qdrant":
            self.qdrant = docker.Container(
                f"{name}-qdrant", name=f"{name}-qdrant", image=pinned("qdrant", QDRANT_IMAGE).image_id,
                envs=["QDRANT__TELEMETRY_DISABLED=true"], networks_advanced=backend_only, restart="unless-stopped",
                memory=1024, volumes=[docker.ContainerVolumeArgs(volume_name=volume("qdrant-data").name,
                                                                 container_path="/qdrant/storage")],
                healthcheck=_health(["CMD-SHELL", "bash -c ':> /dev/tcp/127.0.0.1/6333' || exit 1"]),
                capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"]),
                security_opts=["no-new-privileges:true"], labels=labels, opts=child)
            env |= {"AGENT_VECTOR_BACKEND": "qdrant", "AGENT_QDRANT_URL": f"http://{name}-qdrant:6333"}
            depends.append(self.qdrant)

        if config.app.image:
            image_ref: pulumi.Output[str] = pulumi.Output.from_input(config.app.image)
        else:
            self.image = AgentImage(f"{name}-image", {
                "repository": "agent-app", "push": False,
                "platform": "linux/arm64" if config.app.architecture == "arm64" else "linux/amd64"}, child)
            image_ref = self.image.image_ref
        envs = [pulumi.Output.concat(key, "=", value) for key, value in sorted(env.items())]
        hardened: dict[str, Any] = {
            "image": image_ref, "envs": envs, "user": APP_USER, "read_only": True,
            "tmpfs": {"/tmp": "rw,noexec,nosuid,size=256m"}, "networks_advanced": both,
            "restart": "unless-stopped", "memory": config.app.memory_mb,
            "capabilities": docker.ContainerCapabilitiesArgs(drops=["ALL"]),
            "security_opts": ["no-new-privileges:true"], "labels": labels}
        after = pulumi.ResourceOptions(parent=self, depends_on=depends)
        health_url = f"http://127.0.0.1:{config.app.port}/healthz"
        self.api = docker.Container(
            f"{name}-api", name=f"{name}-api", command=["agent-app", "serve", "--host", "0.0.0.0", "--no-worker"],
            ports=[docker.ContainerPortArgs(internal=config.app.port, external=d.api_host_port, ip=d.bind_address)],
            healthcheck=_health(["CMD", "python", "-c",
                                 f"import urllib.request; urllib.request.urlopen('{health_url}', timeout=3)"]),
            destroy_grace_seconds=max(30, config.timeouts.request_seconds + 10), opts=after, **hardened)
        # The worker serves /healthz on its health port (`agent-app worker --health-port`): alive
        # while its claim loop runs, also while it drains after SIGTERM. Not published.
        worker = {**hardened, "envs": [*envs, f"AGENT_WORKER_HEALTH_PORT={WORKER_HEALTH_PORT}"]}
        self.worker = docker.Container(
            f"{name}-worker", name=f"{name}-worker", command=["agent-app", "worker"],
            healthcheck=_health(["CMD-SHELL", http_health_check(WORKER_HEALTH_PORT, timeout_seconds=3)]),
            # Docker waits this long after SIGTERM: a running step finishes before the stop.
            destroy_grace_seconds=config.timeouts.run_seconds + 30, stop_timeout=config.timeouts.run_seconds + 30,
            opts=after, **worker)
        host = "localhost" if d.bind_address in ("127.0.0.1", "0.0.0.0") else d.bind_address
        self.outputs = {
            "endpoint": pulumi.Output.from_input(f"http://{host}:{d.api_host_port}"),
            "image_ref": image_ref,
            "network": self.backend.name,
            "queue_stream": pulumi.Output.from_input(QUEUE_STREAM),
        }
        self.register_outputs(self.outputs)


class HybridAgent(ContainerAgent):
    """ContainerAgent plus PostgreSQL with pgvector (and Qdrant when `vectors.backend: qdrant`)."""

    type_token = "agent-infra:docker:HybridAgent"

"""Options the example stack does not use: CloudNativePG, Qdrant, ExternalSecrets, traefik, KEDA
for the API, no KEDA, and the config errors a user can act on."""

from __future__ import annotations

from typing import Any

import pytest
from agent_infra.components.config import load_deployment
from agent_infra.components.errors import ConfigError
from agent_infra.components.kubernetes import ContainerAgent, HybridAgent

from agent_infra.offline import Plan, synthesize

SECRETS = {"agent-infra:apiKeys": "k", "agent-infra:redisPassword": "r"}
ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:llm-key-AbCdEf"


def build(config: dict[str, Any], secrets: dict[str, str] | None = None, agent: type = HybridAgent) -> Plan:
    values = SECRETS if secrets is None else secrets
    return synthesize(lambda: agent("agent", load_deployment(config)), stack="variant",
                      config=values, secret_keys=list(values))


def deployment(**kubernetes: Any) -> dict[str, Any]:
    return {"cloud": "kubernetes", "topology": "hybrid",
            "app": {"image": "ghcr.io/acme/agent-app:1.0.0", "llm_provider": "openai",
                    "secrets": {"AGENT_API_KEYS": {"config": "apiKeys"}, "AGENT_LLM_API_KEY": {"arn": ARN}}},
            "vectors": {"backend": "qdrant"},
            "scaling": {"schedules": [
                {"name": "day", "cron": "0 7 * * *", "min_instances": 3, "target": "api"},
                {"name": "night", "cron": "0 22 * * *", "min_instances": 1, "target": "api"}]},
            "kubernetes": {"external_secrets_store": "aws-secrets", "postgres_operator": "cloudnativepg",
                           "ingress_class": "traefik", **kubernetes}}


def secret_files(plan: Plan, deployment: str) -> dict[str, Any]:
    spec = plan.one("kubernetes:apps/v1:Deployment", deployment).inputs["spec"]["template"]["spec"]
    return {v["name"]: v for v in spec["volumes"]}["secrets"]["projected"]


@pytest.fixture(scope="module")
def plan() -> Plan:
    return build(deployment())


def test_cloud_secret_becomes_an_external_secret(plan: Plan) -> None:
    external = plan.one("kubernetes:external-secrets.io/v1:ExternalSecret", "agent-secrets-external").inputs["spec"]
    assert external["secretStoreRef"] == {"name": "aws-secrets", "kind": "ClusterSecretStore"}
    assert external["data"] == [{"secretKey": "AGENT_LLM_API_KEY", "remoteRef": {"key": ARN}}]
    assert external["target"]["name"] == "agent-secrets-external"
    files = secret_files(plan, "agent-api")
    assert {"secret": {"name": "agent-secrets-external", "items": [
        {"key": "AGENT_LLM_API_KEY", "path": "AGENT_LLM_API_KEY"}]}} in files["sources"]


def test_cloudnativepg_cluster_with_pgvector_and_operator_password(plan: Plan) -> None:
    cluster = plan.one("kubernetes:postgresql.cnpg.io/v1:Cluster", "agent-postgres").inputs["spec"]
    assert cluster["bootstrap"]["initdb"] == {"database": "agent", "owner": "agent",
                                              "postInitApplicationSQL": ["CREATE EXTENSION IF NOT EXISTS vector;"]}
    assert cluster["instances"] == 1 and cluster["enableSuperuserAccess"] is False
    assert not [s for s in plan.of_type("kubernetes:apps/v1:StatefulSet") if s.name == "agent-postgres"]
    env = plan.one("kubernetes:apps/v1:Deployment", "agent-worker").inputs["spec"]["template"]["spec"]["containers"][0]["env"]
    assert not [e for e in env if e["name"] in ("AGENT_POSTGRES_PASSWORD", "AGENT_DATABASE_URL")]
    # The operator's `<cluster>-app` Secret holds the full URI; the app reads it as a file.
    assert {"secret": {"name": "agent-postgres-app", "items": [{"key": "uri", "path": "AGENT_DATABASE_URL"}]}} in (
        secret_files(plan, "agent-worker")["sources"])
    operator = plan.one("kubernetes:networking.k8s.io/v1:NetworkPolicy", "agent-network-postgres-operator")
    assert operator.inputs["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 8000},
                                                              {"protocol": "TCP", "port": 5432}]


def test_qdrant_statefulset_is_restricted_and_reachable_only_from_the_app(plan: Plan) -> None:
    qdrant = plan.one("kubernetes:apps/v1:StatefulSet", "agent-qdrant").inputs["spec"]["template"]["spec"]
    assert qdrant["containers"][0]["image"] == "qdrant/qdrant:v1.13.4-unprivileged"
    assert qdrant["containers"][0]["securityContext"]["runAsUser"] == 1000
    policy = plan.one("kubernetes:networking.k8s.io/v1:NetworkPolicy", "agent-network-qdrant-ingress").inputs["spec"]
    assert [p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in policy["ingress"][0]["from"]] == [
        "api", "worker"]
    data = plan.one("kubernetes:core/v1:ConfigMap", "agent-config").inputs["data"]
    assert (data["AGENT_VECTOR_BACKEND"], data["AGENT_QDRANT_URL"]) == ("qdrant", "http://agent-qdrant:6333")


def test_traefik_gets_a_rate_limit_middleware(plan: Plan) -> None:
    middleware = plan.one("kubernetes:traefik.io/v1alpha1:Middleware", "agent-api-ratelimit").inputs["spec"]
    assert middleware == {"rateLimit": {"average": 50, "burst": 100, "period": "1s"}}
    notes = plan.one("kubernetes:networking.k8s.io/v1:Ingress", "agent-api").inputs["metadata"]["annotations"]
    assert notes["traefik.ingress.kubernetes.io/router.middlewares"] == "agent-agent-api-ratelimit@kubernetescrd"


def test_api_schedules_move_the_api_to_keda(plan: Plan) -> None:
    assert not plan.of_type("kubernetes:autoscaling/v2:HorizontalPodAutoscaler")
    api = plan.one("kubernetes:keda.sh/v1alpha1:ScaledObject", "agent-api").inputs["spec"]
    assert [t["type"] for t in api["triggers"]] == ["cpu", "memory", "cron", "cron"]
    assert api["triggers"][2]["metadata"] == {"timezone": "UTC", "start": "0 7 * * *", "end": "0 22 * * *",
                                              "desiredReplicas": "3"}
    assert api["minReplicaCount"] == 1


def test_without_keda_workers_scale_on_cpu() -> None:
    plan = build({"cloud": "kubernetes", "topology": "container", "app": {"image": "ghcr.io/acme/agent-app:1.0.0"},
                  "kubernetes": {"keda": False}}, agent=ContainerAgent)
    assert not plan.of_type("kubernetes:keda.sh/v1alpha1:ScaledObject")
    worker = plan.one("kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "agent-worker").inputs["spec"]
    assert (worker["minReplicas"], worker["maxReplicas"]) == (1, 10)
    assert [m["resource"]["name"] for m in worker["metrics"]] == ["cpu"]
    assert [s.name for s in plan.of_type("kubernetes:apps/v1:StatefulSet")] == ["agent-redis"]
    assert plan.one("agent-infra:kubernetes:ContainerAgent", "agent")


@pytest.mark.parametrize(("change", "message"), [
    ({"external_secrets_store": None},
     "app.secrets.AGENT_LLM_API_KEY: arn references need the external-secrets operator"),
    ({"image_repository": None, "external_secrets_store": "s", "__image": None},
     "kubernetes.image_repository: required when app.image is not set"),
])
def test_config_errors_name_the_key(change: dict[str, Any], message: str) -> None:
    config = deployment(**{k: v for k, v in change.items() if not k.startswith("__")})
    if "__image" in change:
        config["app"] = {**config["app"], "image": None}
    with pytest.raises(ConfigError) as error:
        build(config)
    assert any(line.startswith(message) for line in error.value.problems), error.value.problems


def test_lone_schedule_asks_for_a_closing_one() -> None:
    config = deployment()
    config["scaling"] = {"schedules": [{"name": "day", "cron": "0 7 * * *", "min_instances": 3, "target": "worker"}]}
    with pytest.raises(ConfigError, match=r"scaling.schedules.day: a KEDA cron window needs an end"):
        build(config)


def test_missing_config_secret_names_the_command() -> None:
    with pytest.raises(ConfigError, match=r"kubernetes.redis_password: config key 'redisPassword' is not set; run "
                                          r"`pulumi config set --secret redisPassword <value>`"):
        build(deployment(), {"agent-infra:apiKeys": "k"})


def test_password_without_a_config_value_falls_back_to_env_expansion() -> None:
    # The program never sees a kubernetes_secret's value, so it cannot build the URL into a file.
    plan = build(deployment(redis_password={"kubernetes_secret": "redis-auth/password"}))
    env = plan.one("kubernetes:apps/v1:Deployment", "agent-api").inputs["spec"]["template"]["spec"]["containers"][0]["env"]
    by_name = {e["name"]: e for e in env}
    assert by_name["AGENT_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "redis-auth", "key": "password"}
    assert by_name["AGENT_REDIS_URL"]["value"] == "redis://:$(AGENT_REDIS_PASSWORD)@agent-redis:6379/0"
    redis = plan.one("kubernetes:apps/v1:StatefulSet", "agent-redis").inputs["spec"]["template"]["spec"]
    assert {v["name"]: v for v in redis["volumes"]}["password"]["projected"]["sources"] == [
        {"secret": {"name": "redis-auth", "items": [{"key": "password", "path": "password"}]}}]
    auth = plan.one("kubernetes:keda.sh/v1alpha1:TriggerAuthentication", "agent-worker-redis").inputs["spec"]
    assert auth["secretTargetRef"][0] | {} == {"parameter": "password", "name": "redis-auth", "key": "password"}


def test_data_images_pinned_by_digest_are_pulled_if_not_present() -> None:
    digest = "@sha256:" + "0" * 64  # a shape, not a real image: the plan never pulls
    plan = build(deployment(redis_image=f"redis{digest}", postgres_image=f"ghcr.io/cloudnative-pg/postgresql{digest}",
                            qdrant_image=f"qdrant/qdrant{digest}"))
    sets = {s.name: s.inputs["spec"]["template"]["spec"]["containers"][0] for s in
            plan.of_type("kubernetes:apps/v1:StatefulSet")}
    assert (sets["agent-redis"]["image"], sets["agent-redis"]["imagePullPolicy"]) == (f"redis{digest}", "IfNotPresent")
    assert (sets["agent-qdrant"]["image"], sets["agent-qdrant"]["imagePullPolicy"]) == (
        f"qdrant/qdrant{digest}", "IfNotPresent")
    cluster = plan.one("kubernetes:postgresql.cnpg.io/v1:Cluster", "agent-postgres").inputs["spec"]
    assert cluster["imageName"] == f"ghcr.io/cloudnative-pg/postgresql{digest}"
    with pytest.raises(ConfigError, match="pinned"):
        build(deployment(redis_image="redis:latest"))

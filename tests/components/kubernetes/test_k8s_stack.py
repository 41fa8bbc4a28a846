"""The `k8s` example stack (hybrid on Kubernetes), planned once offline, checked object by object."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from agent_infra.components.config import SECRET_NAME_PATTERN

from agent_infra.offline import Plan, PlannedResource, run_project
from agent_infra.render import manifests, render

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"
POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def app_settings() -> Any:
    """agent_app's settings module: the contract the wiring is held against."""
    try:
        import agent_infra.agent_app.settings as settings
    except ImportError as error:  # pragma: no cover - environment problem, named for the user
        pytest.fail(f"agent_infra.agent_app.settings is not importable ({error}); run pip install -e '.[app]'")
    return settings


@pytest.fixture(scope="module")
def plan(repo_root: Any) -> Plan:
    return run_project(repo_root, "k8s")


def pod_specs(plan: Plan) -> list[tuple[str, dict[str, Any]]]:
    return [(r.name, r.inputs["spec"]["template"]["spec"]) for r in plan.of_type(DEPLOYMENT) + plan.of_type(STATEFULSET)]


def configmap(plan: Plan) -> dict[str, str]:
    return plan.one("kubernetes:core/v1:ConfigMap", "agent-config").inputs["data"]


def container(plan: Plan, deployment: str) -> dict[str, Any]:
    return plan.one(DEPLOYMENT, deployment).inputs["spec"]["template"]["spec"]["containers"][0]


def test_stack_creates_the_hybrid_objects(plan: Plan) -> None:
    counts = {t: c for t, c in plan.count_by_type().items() if t.startswith("kubernetes:")}
    assert counts == {
        "kubernetes:apps/v1:Deployment": 2, "kubernetes:apps/v1:StatefulSet": 2,
        "kubernetes:autoscaling.k8s.io/v1:VerticalPodAutoscaler": 2,
        "kubernetes:autoscaling/v2:HorizontalPodAutoscaler": 1, "kubernetes:core/v1:ConfigMap": 2,
        "kubernetes:core/v1:Namespace": 1, "kubernetes:core/v1:Secret": 1, "kubernetes:core/v1:Service": 3,
        "kubernetes:core/v1:ServiceAccount": 1, "kubernetes:keda.sh/v1alpha1:ScaledObject": 1,
        "kubernetes:keda.sh/v1alpha1:TriggerAuthentication": 1, "kubernetes:networking.k8s.io/v1:Ingress": 1,
        "kubernetes:networking.k8s.io/v1:NetworkPolicy": 6, "kubernetes:policy/v1:PodDisruptionBudget": 4}
    assert plan.outputs["endpoint"] == "https://agent.example.com"
    assert plan.outputs["queue_stream"] == "agent:tasks"


def test_namespace_enforces_restricted_pod_security(plan: Plan) -> None:
    labels = plan.one("kubernetes:core/v1:Namespace").inputs["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
    assert labels["environment"] == "staging" and labels["stack"] == "k8s"


def test_service_account_mounts_no_token(plan: Plan) -> None:
    account = plan.one("kubernetes:core/v1:ServiceAccount", "agent-app")
    assert account.inputs["automountServiceAccountToken"] is False
    for name, spec in pod_specs(plan):
        assert spec["automountServiceAccountToken"] is False, name


def test_every_container_is_restricted_probed_and_limited(plan: Plan) -> None:
    assert len(pod_specs(plan)) == 4
    for name, spec in pod_specs(plan):
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for c in spec["containers"]:
            ctx = c["securityContext"]
            assert ctx["readOnlyRootFilesystem"] is True, name
            assert ctx["allowPrivilegeEscalation"] is False, name
            assert ctx["capabilities"] == {"drop": ["ALL"]}, name
            assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] > 0, name
            assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}, name
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                assert probe in c, f"{name}: {probe}"
            assert set(c["resources"]["limits"]) == {"cpu", "memory", "ephemeral-storage"}, name
            assert set(c["resources"]["requests"]) == {"cpu", "memory", "ephemeral-storage"}, name
            assert not c["image"].endswith(":latest") and re.search(r"(:[\w.-]+|@sha256:[0-9a-f]{64})$", c["image"])
            assert {"mountPath": "/tmp", "name": "tmp"} in c["volumeMounts"], name


def test_api_deployment_defaults(plan: Plan) -> None:
    api = container(plan, "agent-api")
    assert api["command"] == ["agent-app", "serve", "--host", "0.0.0.0", "--no-worker"]
    assert api["resources"] == {"requests": {"cpu": "250m", "memory": "512Mi", "ephemeral-storage": "128Mi"},
                                "limits": {"cpu": "1000m", "memory": "2Gi", "ephemeral-storage": "1Gi"}}
    assert api["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert api["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert api["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    spec = plan.one(DEPLOYMENT, "agent-api").inputs["spec"]
    assert "replicas" not in spec  # the HPA owns the count
    assert [c["topologyKey"] for c in spec["template"]["spec"]["topologySpreadConstraints"]] == [
        "kubernetes.io/hostname", "topology.kubernetes.io/zone"]
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_worker_grace_period_outlasts_a_run(plan: Plan) -> None:
    spec = plan.one(DEPLOYMENT, "agent-worker").inputs["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] == 300 + 30
    worker = spec["containers"][0]
    assert worker["command"] == ["agent-app", "worker"]



def test_worker_probes_its_health_endpoint(plan: Plan) -> None:
    worker = container(plan, "agent-worker")
    assert worker["ports"] == [{"name": "health", "containerPort": 8001, "protocol": "TCP"}]
    env = {e["name"]: e.get("value") for e in worker["env"]}
    assert env["AGENT_WORKER_HEALTH_PORT"] == "8001"
    assert worker["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert worker["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert worker["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert not any("exec" in worker[p] for p in ("livenessProbe", "readinessProbe", "startupProbe"))
    # The API does not get the worker's port (it shares the ConfigMap, not this env entry).
    assert "AGENT_WORKER_HEALTH_PORT" not in {e["name"] for e in container(plan, "agent-api")["env"]}
    # No Service selects the worker: the health port is for the kubelet only.
    worker_labels = plan.one(DEPLOYMENT, "agent-worker").inputs["spec"]["selector"]["matchLabels"]
    for service in plan.of_type("kubernetes:core/v1:Service"):
        assert service.inputs["spec"].get("selector") != worker_labels


def test_image_is_built_by_content_and_pinned_by_digest(plan: Plan) -> None:
    image = plan.one("docker-build:index:Image", "agent-image")
    assert re.fullmatch(r"ghcr\.io/example/agent-app:c-[0-9a-f]{12}", image.inputs["tags"][0])
    assert image.inputs["push"] is True and image.inputs["registries"] == "[secret]"
    # The installed agent_app's Dockerfile, by absolute path: the CLI's working directory is stacks/.
    from agent_infra.components.paths import agent_app_dir

    assert image.inputs["dockerfile"] == {"location": str(agent_app_dir() / "Dockerfile")}
    assert container(plan, "agent-api")["image"] == plan.outputs["image_ref"]
    assert "@sha256:" in plan.outputs["image_ref"]


def test_keda_trigger_names_the_stream_and_group_the_worker_consumes(plan: Plan) -> None:
    settings = app_settings()
    defaults = settings.Settings.model_fields
    scaled = plan.one("kubernetes:keda.sh/v1alpha1:ScaledObject", "agent-worker").inputs["spec"]
    redis_triggers = [t for t in scaled["triggers"] if t["type"] == "redis-streams"]
    assert len(redis_triggers) == 2
    for trigger in redis_triggers:
        meta = trigger["metadata"]
        assert meta["stream"] == configmap(plan)["AGENT_QUEUE_STREAM"] == defaults["queue_stream"].default
        assert meta["consumerGroup"] == configmap(plan)["AGENT_QUEUE_GROUP"] == defaults["queue_group"].default
        assert meta["address"] == "agent-redis.agent.svc:6379"
        assert trigger["authenticationRef"] == {"name": "agent-worker-redis"}
    assert {k: v for t in redis_triggers for k, v in t["metadata"].items() if k.endswith("Count")} == {
        "lagCount": "5", "pendingEntriesCount": "5"}
    assert scaled["scaleTargetRef"]["name"] == "agent-worker"
    assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (0, 10)
    cron = [t for t in scaled["triggers"] if t["type"] == "cron"]
    assert cron == [{"type": "cron", "name": "cron-business-hours", "metadata": {
        "timezone": "UTC", "start": "0 8 * * 1-5", "end": "0 19 * * 1-5", "desiredReplicas": "2"}}]
    auth = plan.one("kubernetes:keda.sh/v1alpha1:TriggerAuthentication", "agent-worker-redis").inputs["spec"]
    assert auth == {"secretTargetRef": [{"parameter": "password", "name": "agent-secrets",
                                         "key": "AGENT_REDIS_PASSWORD"}]}


def test_api_hpa_vpa_and_pdbs(plan: Plan) -> None:
    hpa = plan.one("kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "agent-api").inputs["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 6)
    assert {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in hpa["metrics"]} == {
        "cpu": 60, "memory": 75}
    for vpa in plan.of_type("kubernetes:autoscaling.k8s.io/v1:VerticalPodAutoscaler"):
        assert vpa.inputs["spec"]["updatePolicy"] == {"updateMode": "Off"}
    pdbs = {p.name: p.inputs["spec"] for p in plan.of_type("kubernetes:policy/v1:PodDisruptionBudget")}
    assert sorted(pdbs) == ["agent-api", "agent-postgres", "agent-redis", "agent-worker"]
    assert pdbs["agent-api"]["maxUnavailable"] == 1
    assert pdbs["agent-worker"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/instance": "agent", "app.kubernetes.io/component": "worker"}


def test_ingress_has_tls_timeouts_and_rate_limits(plan: Plan) -> None:
    ingress = plan.one("kubernetes:networking.k8s.io/v1:Ingress", "agent-api").inputs
    notes = ingress["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "300"
    assert notes["nginx.ingress.kubernetes.io/proxy-send-timeout"] == "300"
    assert notes["nginx.ingress.kubernetes.io/limit-rps"] == "20"
    assert notes["nginx.ingress.kubernetes.io/limit-burst-multiplier"] == "2"
    assert notes["cert-manager.io/cluster-issuer"] == "letsencrypt-prod"
    assert ingress["spec"]["tls"] == [{"hosts": ["agent.example.com"], "secretName": "agent-api-tls"}]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    service = plan.one("kubernetes:core/v1:Service", "agent-api").inputs["spec"]
    assert service["type"] == "ClusterIP" and service["ports"][0]["targetPort"] == "http"


def _pods(selector: dict[str, Any]) -> str:
    """A pod selector as a short name: `*`, `api`, `api+worker`, `kube-dns`."""
    if not selector:
        return "*"
    labels = selector.get("matchLabels", {})
    named = labels.get("app.kubernetes.io/component") or labels.get("k8s-app")
    if named:
        return str(named)
    return "+".join(v for e in selector.get("matchExpressions", []) for v in e["values"])


def _peer(peer: dict[str, Any]) -> str:
    if "ipBlock" in peer:
        return f"cidr:{peer['ipBlock']['cidr']} except {len(peer['ipBlock'].get('except', []))}"
    pods = _pods(peer["podSelector"]) if "podSelector" in peer else ""
    namespace = peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
    return f"ns:{namespace}/{pods}".rstrip("/") if namespace else pods


def _flows(plan: Plan) -> set[tuple[str, str, str, str]]:
    """(direction, pods, peer, ports) for every rule of every policy."""
    flows = set()
    for policy in plan.of_type(POLICY):
        spec = policy.inputs["spec"]
        target = _pods(spec["podSelector"])
        for direction, key, peers_key in (("in", "ingress", "from"), ("out", "egress", "to")):
            for rule in spec.get(key, []):
                ports = ",".join(f"{p['protocol']}/{p['port']}" for p in rule["ports"])
                flows |= {(direction, target, _peer(peer), ports) for peer in rule[peers_key]}
    return flows


def test_network_policies_allow_exactly_the_listed_flows(plan: Plan) -> None:
    deny = plan.one(POLICY, "agent-network-default-deny").inputs["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert _flows(plan) == {
        ("out", "*", "ns:kube-system/kube-dns", "UDP/53,TCP/53"),
        ("in", "api", "ns:ingress-nginx", "TCP/8000"),
        ("in", "api", "ns:monitoring", "TCP/8000"),  # Prometheus scrapes /metrics
        ("in", "redis", "ns:keda", "TCP/6379"),  # the KEDA operator reads the stream it scales on
        ("out", "api+worker", "redis", "TCP/6379"),
        ("out", "api+worker", "postgres", "TCP/5432"),
        ("out", "api+worker", "cidr:0.0.0.0/0 except 5", "TCP/443"),
        ("in", "redis", "api", "TCP/6379"), ("in", "redis", "worker", "TCP/6379"),
        ("in", "postgres", "api", "TCP/5432"), ("in", "postgres", "worker", "TCP/5432"),
    }


def secret_files(plan: Plan, deployment: str) -> dict[str, Any]:
    """The projected volume of the app's secret files, checked to be mounted read-only where
    agent_app's settings read files."""
    spec = plan.one(DEPLOYMENT, deployment).inputs["spec"]["template"]["spec"]
    mounts = {m["name"]: m for m in spec["containers"][0]["volumeMounts"]}
    assert mounts["secrets"] == {"name": "secrets", "mountPath": app_settings().SECRETS_DIR, "readOnly": True}
    return {v["name"]: v for v in spec["volumes"]}["secrets"]["projected"]


def test_secrets_stay_out_of_configmaps_and_plain_env(plan: Plan) -> None:
    secret = plan.one("kubernetes:core/v1:Secret", "agent-secrets")
    assert secret.inputs["stringData"] == "[secret]"
    data = configmap(plan)
    assert not [k for k in data if SECRET_NAME_PATTERN.search(k)]
    secret_vars = {"AGENT_API_KEYS", "AGENT_WEBHOOK_SIGNING_SECRET", "AGENT_REDIS_PASSWORD", "AGENT_POSTGRES_PASSWORD",
                   "AGENT_REDIS_URL", "AGENT_DATABASE_URL"}
    assert not secret_vars & set(data)
    for deployment in ("agent-api", "agent-worker"):
        env = container(plan, deployment)["env"]
        assert not [e for e in env if "valueFrom" in e or e["name"] in secret_vars], deployment
        assert "envFrom" not in container(plan, deployment) or all(
            "secretRef" not in source for source in container(plan, deployment)["envFrom"])
        # The app's secrets and the URLs carrying the data passwords are files; the bare
        # passwords are not mounted in app pods at all.
        files = ["AGENT_API_KEYS", "AGENT_DATABASE_URL", "AGENT_REDIS_URL", "AGENT_WEBHOOK_SIGNING_SECRET"]
        assert secret_files(plan, deployment) == {"defaultMode": 0o400, "sources": [{"secret": {
            "name": "agent-secrets", "items": [{"key": name, "path": name} for name in files]}}]}
    for resource in plan.custom_resources():
        assert "offline-secret-" not in repr(resource.inputs), resource.name
        assert "redis://:" not in repr(resource.inputs) and "postgresql://agent:" not in repr(resource.inputs)


def test_no_secret_reaches_any_container_as_an_env_var(plan: Plan) -> None:
    for name, spec in pod_specs(plan):
        for c in spec["containers"]:
            assert not [e for e in c.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})], (name, c["name"])


def test_third_party_images_are_pulled_always_unless_pinned_by_digest(plan: Plan) -> None:
    for name, spec in pod_specs(plan):
        for c in spec["containers"]:
            expected = "IfNotPresent" if "@sha256:" in c["image"] else "Always"
            assert c["imagePullPolicy"] == expected, (name, c["image"])
    assert container(plan, "agent-api")["imagePullPolicy"] == "IfNotPresent"  # the built image, by digest


def test_configmap_is_the_app_contract(plan: Plan) -> None:
    data = configmap(plan)
    assert {k: data[k] for k in ("AGENT_ENVIRONMENT", "AGENT_QUEUE_BACKEND", "AGENT_STATE_BACKEND",
                                 "AGENT_VECTOR_BACKEND", "AGENT_RUN_TIMEOUT_SECONDS", "AGENT_BIND_HOST")} == {
        "AGENT_ENVIRONMENT": "staging", "AGENT_QUEUE_BACKEND": "redis", "AGENT_STATE_BACKEND": "redis",
        "AGENT_VECTOR_BACKEND": "pgvector", "AGENT_RUN_TIMEOUT_SECONDS": "300", "AGENT_BIND_HOST": "0.0.0.0"}
    settings = app_settings()
    files = {item["path"] for source in secret_files(plan, "agent-api")["sources"] for item in source["secret"]["items"]}
    env_names = set(data) | {e["name"] for e in container(plan, "agent-api")["env"]} | files
    helpers = {"AGENT_REDIS_PASSWORD", "AGENT_POSTGRES_PASSWORD", "TMPDIR"}
    assert env_names - helpers <= settings.ENV_CONTRACT


def test_data_services_are_persistent_and_authenticated(plan: Plan) -> None:
    redis = plan.one(STATEFULSET, "agent-redis").inputs["spec"]
    redis_pod = redis["template"]["spec"]
    command = redis_pod["containers"][0]["command"]
    assert command[:2] == ["sh", "-c"] and command[2].startswith("exec redis-server - ")
    assert 'requirepass "$(cat /run/secrets/redis/password)"' in command[2]
    assert "--maxmemory-policy noeviction" in command[2]
    assert "env" not in redis_pod["containers"][0]
    assert {v["name"]: v for v in redis_pod["volumes"]}["password"]["projected"] == {"defaultMode": 0o400, "sources": [
        {"secret": {"name": "agent-secrets", "items": [{"key": "AGENT_REDIS_PASSWORD", "path": "password"}]}}]}
    assert redis["volumeClaimTemplates"][0]["spec"]["resources"] == {"requests": {"storage": "5Gi"}}
    postgres = plan.one(STATEFULSET, "agent-postgres").inputs["spec"]
    pg = postgres["template"]["spec"]["containers"][0]
    assert pg["image"] == "pgvector/pgvector:0.8.0-pg17"
    assert {"name": "POSTGRES_PASSWORD_FILE", "value": "/run/secrets/postgres/password"} in pg["env"]
    assert {"name": "password", "mountPath": "/run/secrets/postgres", "readOnly": True} in pg["volumeMounts"]
    volumes = {v["name"]: v for v in postgres["template"]["spec"]["volumes"]}
    assert volumes["password"]["projected"]["sources"] == [
        {"secret": {"name": "agent-secrets", "items": [{"key": "AGENT_POSTGRES_PASSWORD", "path": "password"}]}}]
    init = plan.one("kubernetes:core/v1:ConfigMap", "agent-postgres-init").inputs["data"]
    assert init == {"01-pgvector.sql": "CREATE EXTENSION IF NOT EXISTS vector;\n"}


def test_rendered_manifests_parse_and_round_trip(plan: Plan, tmp_path: Any) -> None:
    paths = render(plan, tmp_path)
    objects = manifests(plan)
    k8s_resources = [r for r in plan.custom_resources() if r.type.startswith("kubernetes:")]
    assert len(paths) == len(objects) == len(k8s_resources) == 28
    loaded = [yaml.safe_load(p.read_text()) for p in paths]
    assert loaded == objects
    assert loaded[0]["kind"] == "Namespace" and loaded[0]["apiVersion"] == "v1"
    by_kind = {(m["kind"], m["metadata"]["name"]): m for m in loaded}
    assert by_kind[("Deployment", "agent-api")]["apiVersion"] == "apps/v1"
    assert by_kind[("ScaledObject", "agent-worker")]["apiVersion"] == "keda.sh/v1alpha1"
    assert by_kind[("Secret", "agent-secrets")]["stringData"] == {
        "AGENT_API_KEYS": "", "AGENT_DATABASE_URL": "", "AGENT_POSTGRES_PASSWORD": "", "AGENT_REDIS_PASSWORD": "",
        "AGENT_REDIS_URL": "", "AGENT_WEBHOOK_SIGNING_SECRET": ""}
    resource: PlannedResource = plan.one(DEPLOYMENT, "agent-api")
    rendered = by_kind[("Deployment", "agent-api")]
    assert rendered["spec"] == resource.inputs["spec"] and rendered["metadata"] == resource.inputs["metadata"]

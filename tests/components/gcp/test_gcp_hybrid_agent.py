"""The GCP hybrid topology on the offline plan: wiring, secrets by reference, private data stores,
worker not public, production switches."""

from __future__ import annotations

from typing import Any

import pytest
from agent_infra.components.config import load_deployment
from agent_infra.components.topology import deploy

from agent_infra.offline import Plan, run_project, synthesize

SERVICE = "gcp:cloudrunv2/service:Service"
SECRET_MEMBER = "gcp:secretmanager/secretIamMember:SecretIamMember"
SQL = "gcp:sql/databaseInstance:DatabaseInstance"
REDIS = "gcp:redis/instance:Instance"
SECRETS = {"agent-infra:apiKeys": "k1,k2", "agent-infra:databasePassword": "pw-offline-123"}


def _config(environment: str, **extra: Any) -> Any:
    return load_deployment({"cloud": "gcp", "topology": "hybrid", "environment": environment,
                            "regions": {"primary": "us-central1"},
                            "app": {"image": "us-docker.pkg.dev/acme/agent/agent-app:1.2.3",
                                    "secrets": {"AGENT_API_KEYS": {"config": "apiKeys"},
                                                "AGENT_LLM_API_KEY": {"gcp_secret": "projects/acme/secrets/llm"}}},
                            "budget": {"emails": ["team@example.com"]},
                            "gcp": {"project": "acme-agents", "billing_account": "012345-6789AB-CDEF01"}, **extra})


def _run(environment: str) -> Plan:
    config = _config(environment)
    return synthesize(lambda: deploy("agent", config), stack=environment, config=SECRETS,
                      secret_keys=list(SECRETS))


@pytest.fixture(scope="module")
def dev() -> Plan:
    return _run("dev")


@pytest.fixture(scope="module")
def prod() -> Plan:
    return _run("prod")


def container(plan: Plan, service: str) -> dict[str, Any]:
    return plan.one(SERVICE, f"agent-{service}").get("template.containers")[0]


def envs(plan: Plan, service: str) -> tuple[dict[str, Any], dict[str, Any]]:
    entries = container(plan, service)["envs"]
    plain = {e["name"]: e["value"] for e in entries if "value" in e}
    refs = {e["name"]: e["valueSource"]["secretKeyRef"] for e in entries if "valueSource" in e}
    return plain, refs


@pytest.mark.parametrize("service", ["api", "worker"])
def test_services_get_redis_queue_and_database_by_reference(dev: Plan, service: str) -> None:
    plain, refs = envs(dev, service)
    sql = dev.one(SQL, "agent-db")
    assert plain["AGENT_QUEUE_BACKEND"] == "redis" and plain["AGENT_STATE_BACKEND"] == "redis"
    assert plain["AGENT_VECTOR_BACKEND"] == "pgvector"
    assert plain["AGENT_DATABASE_URL"] == (f"postgresql://agent@{sql.outputs['privateIpAddress']}:5432/agent"
                                           "?ssl=require")
    # Secrets only as Secret Manager references, read at instance start.
    assert set(refs) == {"AGENT_REDIS_URL", "PGPASSWORD", "AGENT_API_KEYS", "AGENT_LLM_API_KEY"}
    assert all(ref["version"] == "latest" for ref in refs.values())
    assert refs["AGENT_LLM_API_KEY"]["secret"] == "projects/acme/secrets/llm"
    assert not any(name in plain for name in refs)


def test_redis_url_secret_holds_the_auth_string_over_tls(dev: Plan) -> None:
    redis = dev.one(REDIS, "agent-redis")
    assert redis.inputs["authEnabled"] is True
    assert redis.inputs["transitEncryptionMode"] == "SERVER_AUTHENTICATION"
    assert redis.inputs["connectMode"] == "PRIVATE_SERVICE_ACCESS"
    version = dev.one("gcp:secretmanager/secretVersion:SecretVersion", "agent-redis-url-agent-redis-url")
    assert version.inputs["secretData"] == "[secret]"
    assert "secretData" in version.secret_paths
    assert redis.urn in version.dependencies  # built from the instance's AUTH string, host and port


def test_each_secret_is_readable_by_exactly_the_two_service_accounts(dev: Plan) -> None:
    members = dev.of_type(SECRET_MEMBER)
    assert {m.inputs["role"] for m in members} == {"roles/secretmanager.secretAccessor"}
    by_secret: dict[str, set[str]] = {}
    for m in members:
        by_secret.setdefault(str(m.inputs["secretId"]), set()).add(m.inputs["member"])
    accounts = {f"serviceAccount:{a.outputs['email']}" for a in dev.of_type("gcp:serviceaccount/account:Account")}
    assert len(by_secret) == 4  # api keys, existing LLM key, Redis URL, database password
    assert all(found == accounts for found in by_secret.values())
    assert "projects/acme/secrets/llm" in by_secret
    assert not dev.of_type("gcp:projects/iAMMember:IAMMember") and not dev.of_type("gcp:projects/iAMBinding:IAMBinding")


def test_only_the_api_is_public(dev: Plan) -> None:
    api, worker = dev.one(SERVICE, "agent-api"), dev.one(SERVICE, "agent-worker")
    assert api.inputs["ingress"] == "INGRESS_TRAFFIC_ALL"
    assert worker.inputs["ingress"] == "INGRESS_TRAFFIC_INTERNAL_ONLY"
    invoker = dev.one("gcp:cloudrunv2/serviceIamMember:ServiceIamMember")
    assert (invoker.inputs["member"], invoker.inputs["role"]) == ("allUsers", "roles/run.invoker")
    assert invoker.inputs["name"] == api.outputs["name"]


def test_worker_keeps_cpu_and_one_instance_and_probes_its_health_port(dev: Plan) -> None:
    worker = dev.one(SERVICE, "agent-worker")
    app = container(dev, "worker")
    assert worker.get("template.scaling.minInstanceCount") == 1
    assert app["resources"]["cpuIdle"] is False
    assert app["commands"] == ["agent-app", "worker"]
    assert app["ports"]["containerPort"] == 8001
    assert app["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": 8001}
    assert envs(dev, "worker")[0]["AGENT_WORKER_HEALTH_PORT"] == "8001"


def test_api_limits_probes_timeout_and_egress(dev: Plan) -> None:
    api = dev.one(SERVICE, "agent-api")
    app = container(dev, "api")
    assert app["resources"]["limits"] == {"cpu": "1", "memory": "1024Mi"}
    assert app["startupProbe"]["httpGet"]["path"] == "/healthz" and app["livenessProbe"]["httpGet"]["port"] == 8000
    assert api.get("template.timeout") == "29s"
    assert api.get("template.scaling.maxInstanceCount") == 4
    assert api.get("template.vpcAccess.egress") == "PRIVATE_RANGES_ONLY"
    assert api.get("template.serviceAccount") != dev.one(SERVICE, "agent-worker").get("template.serviceAccount")


def test_cloud_sql_is_private_tls_only_and_backed_up(dev: Plan) -> None:
    sql = dev.one(SQL, "agent-db")
    ip = sql.get("settings.ipConfiguration")
    assert ip["ipv4Enabled"] is False and ip["sslMode"] == "ENCRYPTED_ONLY" and "authorizedNetworks" not in ip
    backups = sql.get("settings.backupConfiguration")
    assert backups["enabled"] is True and backups["pointInTimeRecoveryEnabled"] is True
    assert backups["backupRetentionSettings"]["retainedBackups"] == 7
    user = dev.one("gcp:sql/user:User")
    assert user.inputs["password"] == "[secret]"


def test_production_switches_differ_from_dev(dev: Plan, prod: Plan) -> None:
    for plan, on in ((dev, False), (prod, True)):
        sql = plan.one(SQL, "agent-db")
        assert sql.inputs["deletionProtection"] is on
        assert sql.get("settings.deletionProtectionEnabled") is on
        assert sql.get("settings.availabilityType") == ("REGIONAL" if on else "ZONAL")
        assert plan.one(REDIS).inputs["tier"] == ("STANDARD_HA" if on else "BASIC")
        for service in ("agent-api", "agent-worker"):
            assert plan.one(SERVICE, service).inputs["deletionProtection"] is on
    assert prod.one(SERVICE, "agent-api").get("template.scaling.minInstanceCount") == 2


def test_labels_are_gcp_safe_and_everywhere(dev: Plan) -> None:
    for token in (SERVICE, REDIS, "gcp:secretmanager/secret:Secret"):
        for resource in dev.of_type(token):
            assert resource.inputs["labels"]["environment"] == "dev"
            assert resource.inputs["labels"]["managed-by"] == "pulumi"
    assert dev.one(SQL).get("settings.userLabels.stack") == "dev"


def test_budget_and_alerts_notify_the_email_channel(dev: Plan) -> None:
    channel = dev.one("gcp:monitoring/notificationChannel:NotificationChannel")
    assert channel.inputs["labels"] == {"email_address": "team@example.com"}
    budget = dev.one("gcp:billing/budget:Budget")
    assert budget.inputs["billingAccount"] == "012345-6789AB-CDEF01"
    assert [r["thresholdPercent"] for r in budget.inputs["thresholdRules"]] == [0.8, 1.0, 1.0]
    assert budget.inputs["thresholdRules"][-1]["spendBasis"] == "FORECASTED_SPEND"
    assert budget.inputs["amount"]["specifiedAmount"] == {"currencyCode": "USD", "units": "100"}
    alerts = dev.of_type("gcp:monitoring/alertPolicy:AlertPolicy")
    assert sorted(a.name for a in alerts) == ["agent-observability-api-5xx", "agent-observability-redis-memory",
                                              "agent-observability-worker-5xx"]
    assert all(a.inputs["notificationChannels"] == [channel.id] for a in alerts)
    assert budget.get("allUpdatesRule.monitoringNotificationChannels") == [channel.id]
    logs = dev.one("gcp:logging/projectBucketConfig:ProjectBucketConfig")
    assert (logs.inputs["bucketId"], logs.inputs["retentionDays"]) == ("_Default", 30)


def test_without_billing_account_the_budget_is_skipped_with_a_warning() -> None:
    raw = _config("dev").model_dump()
    raw["gcp"]["billing_account"] = None
    config = load_deployment(raw)
    plan = synthesize(lambda: deploy("agent", config), stack="dev", config=SECRETS, secret_keys=list(SECRETS))
    assert not plan.of_type("gcp:billing/budget:Budget")
    assert any("billing_account is not set" in line for line in plan.log)


def test_the_gcp_stack_file_previews_with_outputs(repo_root: Any) -> None:
    plan = run_project(repo_root, "gcp")
    assert plan.outputs["endpoint"].startswith("https://") and plan.outputs["endpoint"].endswith(".run.app")
    assert plan.one("gcp:billing/budget:Budget")


def test_container_topology_has_no_database_and_serverless_is_refused() -> None:
    raw = _config("dev").model_dump()
    config = load_deployment({**raw, "topology": "container"})
    plan = synthesize(lambda: deploy("agent", config), stack="dev", config=SECRETS, secret_keys=list(SECRETS))
    assert not plan.of_type(SQL) and "agent-infra:gcp:ContainerAgent" in {r.type for r in plan}
    plain, refs = envs(plan, "api")
    assert plain["AGENT_VECTOR_BACKEND"] == "memory" and "PGPASSWORD" not in refs
    from agent_infra.components.errors import ConfigError

    serverless = load_deployment({**raw, "topology": "serverless"})
    with pytest.raises(ConfigError, match="serverless on gcp is not implemented"):
        synthesize(lambda: deploy("agent", serverless), stack="dev", config=SECRETS, secret_keys=list(SECRETS))


def test_missing_config_secret_stops_before_anything_is_registered() -> None:
    config = _config("dev")
    with pytest.raises(Exception, match="pulumi config set --secret apiKeys"):
        synthesize(lambda: deploy("agent", config), stack="dev",
                   config={"agent-infra:databasePassword": "pw"}, secret_keys=["agent-infra:databasePassword"])


@pytest.mark.parametrize("service", ["api", "worker"])
def test_services_trust_exactly_the_memorystore_ca(dev: Plan, service: str) -> None:
    plain, _ = envs(dev, service)
    assert plain["AGENT_REDIS_CA_CERT"].startswith("-----BEGIN CERTIFICATE-----")
    assert plain["AGENT_REDIS_CA_CERT"] == dev.one("gcp:redis/instance:Instance").outputs["serverCaCerts"][0]["cert"]


def test_api_does_not_consume_the_queue(dev: Plan) -> None:
    # Cloud Run throttles the API's CPU outside requests: the worker service consumes.
    assert container(dev, "api")["commands"] == ["agent-app", "serve", "--no-worker"]

"""Plausible, deterministic outputs for resources and invokes under Pulumi's mocks.

The offline plan must let `apply` chains resolve the way they would in a real preview: an SQS
queue has a URL, an IAM role an ARN, a load balancer a DNS name. Every value here is derived
from the logical name, so two runs of one program give byte-identical plans.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

ACCOUNT_ID = "123456789012"
GCP_PROJECT = "agent-infra-offline"
DEFAULT_AWS_REGION = "us-east-1"
DEFAULT_GCP_REGION = "us-central1"


def short_hash(text: str, length: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def auto_name(logical: str) -> str:
    """Pulumi auto-names physical resources `<name>-<7 random chars>`; ours are deterministic."""
    return f"{logical}-{short_hash(logical, 7)}"


def _aws_arn(service: str, region: str, resource: str, account: str = ACCOUNT_ID) -> str:
    return f"arn:aws:{service}:{region}:{account}:{resource}"


def _type_parts(typ: str) -> tuple[str, str, str]:
    """`aws:sqs/queue:Queue` -> ("aws", "sqs", "Queue")."""
    package, _, rest = typ.partition(":")
    module, _, kind = rest.partition(":")
    return package, module.split("/")[0], kind


OutputFn = Callable[[str, dict[str, Any], str], dict[str, Any]]


def _sqs_queue(name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    physical = inputs.get("name") or auto_name(name)
    if inputs.get("fifoQueue") and not physical.endswith(".fifo"):
        physical += ".fifo"
    return {"name": physical, "arn": _aws_arn("sqs", region, physical),
            "url": f"https://sqs.{region}.amazonaws.com/{ACCOUNT_ID}/{physical}"}


def _dynamodb_table(name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    physical = inputs.get("name") or auto_name(name)
    arn = _aws_arn("dynamodb", region, f"table/{physical}")
    return {"name": physical, "arn": arn, "streamArn": f"{arn}/stream/2026-01-01T00:00:00.000"}


def _lambda_function(name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    physical = inputs.get("name") or auto_name(name)
    arn = _aws_arn("lambda", region, f"function:{physical}")
    return {"name": physical, "arn": arn, "qualifiedArn": f"{arn}:1", "version": "1",
            "invokeArn": f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations"}


def _apigw_api(name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    api_id = short_hash(name, 10)
    scheme = "wss" if inputs.get("protocolType") == "WEBSOCKET" else "https"
    return {"id": api_id, "apiEndpoint": f"{scheme}://{api_id}.execute-api.{region}.amazonaws.com",
            "executionArn": _aws_arn("execute-api", region, api_id),
            "arn": f"arn:aws:apigateway:{region}::/apis/{api_id}"}


def _apigw_stage(name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    api_id = inputs.get("apiId") or short_hash(name, 10)
    stage = inputs.get("name", "$default")
    base = f"{api_id}.execute-api.{region}.amazonaws.com"
    return {"invokeUrl": f"https://{base}/" + ("" if stage == "$default" else stage),
            "executionArn": _aws_arn("execute-api", region, f"{api_id}/{stage}")}


def _named_arn(service: str, prefix: str, global_: bool = False) -> OutputFn:
    def build(name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
        physical = inputs.get("name") or auto_name(name)
        arn = f"arn:aws:{service}::{ACCOUNT_ID}:{prefix}{physical}" if global_ else _aws_arn(service, region, f"{prefix}{physical}")
        return {"name": physical, "arn": arn}
    return build


def _log_group(name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    physical = inputs.get("name") or auto_name(name)
    return {"name": physical, "arn": _aws_arn("logs", region, f"log-group:{physical}")}


def _kms_key(name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    key_id = f"{short_hash(name, 8)}-0000-4000-8000-{short_hash(name + 'k', 12)}"
    return {"keyId": key_id, "arn": _aws_arn("kms", region, f"key/{key_id}")}


def _secret(name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    physical = inputs.get("name") or auto_name(name)
    arn = _aws_arn("secretsmanager", region, f"secret:{physical}-{short_hash(name, 6)}")
    return {"name": physical, "arn": arn, "id": arn}


def _load_balancer(name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    physical = inputs.get("name") or name[:24]
    suffix = f"app/{physical}/{short_hash(name, 16)}"
    return {"name": physical, "arn": _aws_arn("elasticloadbalancing", region, f"loadbalancer/{suffix}"),
            "arnSuffix": suffix, "dnsName": f"{physical}-{short_hash(name, 6)}.{region}.elb.amazonaws.com",
            "zoneId": "Z35SXDOTRQ7X7K"}


def _target_group(name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    physical = inputs.get("name") or name[:24]
    suffix = f"targetgroup/{physical}/{short_hash(name, 16)}"
    return {"name": physical, "arn": _aws_arn("elasticloadbalancing", region, suffix), "arnSuffix": suffix}


def _redis_group(name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    group_id = inputs.get("replicationGroupId") or name
    host = f"master.{group_id}.{short_hash(name, 6)}.{region[:3]}1.cache.amazonaws.com"
    return {"arn": _aws_arn("elasticache", region, f"replicationgroup:{group_id}"),
            "primaryEndpointAddress": host, "readerEndpointAddress": host.replace("master.", "replica."),
            "configurationEndpointAddress": host.replace("master.", "clustercfg.")}


def _rds_cluster(name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    cluster_id = inputs.get("clusterIdentifier") or auto_name(name)
    host = f"{cluster_id}.cluster-{short_hash(name, 12)}.{region}.rds.amazonaws.com"
    secret_arn = _aws_arn("secretsmanager", region, f"secret:rds!cluster-{short_hash(name, 12)}-abc123")
    return {"clusterIdentifier": cluster_id, "arn": _aws_arn("rds", region, f"cluster:{cluster_id}"),
            "endpoint": host, "readerEndpoint": host.replace(".cluster-", ".cluster-ro-"), "port": 5432,
            "clusterResourceId": f"cluster-{short_hash(name, 20).upper()}",
            "masterUserSecrets": [{"secretArn": secret_arn, "kmsKeyId": "", "secretStatus": "active"}]}


def _ecr_repository(name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    physical = inputs.get("name") or auto_name(name)
    return {"name": physical, "arn": _aws_arn("ecr", region, f"repository/{physical}"),
            "repositoryUrl": f"{ACCOUNT_ID}.dkr.ecr.{region}.amazonaws.com/{physical}", "registryId": ACCOUNT_ID}


def _opensearch_collection(name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    coll = short_hash(name, 20)
    return {"arn": _aws_arn("aoss", region, f"collection/{coll}"),
            "collectionEndpoint": f"https://{coll}.{region}.aoss.amazonaws.com",
            "dashboardEndpoint": f"https://{coll}.{region}.aoss.amazonaws.com/_dashboards"}


def _s3_bucket(name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    physical = inputs.get("bucket") or auto_name(name)
    return {"bucket": physical, "arn": f"arn:aws:s3:::{physical}", "bucketDomainName": f"{physical}.s3.amazonaws.com",
            "bucketRegionalDomainName": f"{physical}.s3.{region}.amazonaws.com"}


def _ecs_cluster(name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    physical = inputs.get("name") or auto_name(name)
    return {"name": physical, "arn": _aws_arn("ecs", region, f"cluster/{physical}")}


def _ecs_service(name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    physical = inputs.get("name") or auto_name(name)
    return {"name": physical, "arn": _aws_arn("ecs", region, f"service/{physical}")}


def _task_definition(name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    family = inputs.get("family") or name
    return {"arn": _aws_arn("ecs", region, f"task-definition/{family}:1"), "revision": 1,
            "arnWithoutRevision": _aws_arn("ecs", region, f"task-definition/{family}")}


def _cloud_run(name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    physical = inputs.get("name") or name
    loc = inputs.get("location") or region
    return {"name": physical, "uri": f"https://{physical}-{short_hash(name, 10)}-{loc[:2]}.a.run.app",
            "selfLink": f"https://run.googleapis.com/v2/projects/{GCP_PROJECT}/locations/{loc}/services/{physical}"}


def _memorystore(name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    physical = inputs.get("name") or auto_name(name)
    loc = inputs.get("region") or region
    tls = inputs.get("transitEncryptionMode") == "SERVER_AUTHENTICATION"
    return {"name": physical, "id": f"projects/{GCP_PROJECT}/locations/{loc}/instances/{physical}",
            "host": f"10.100.0.{int(short_hash(name, 2), 16) % 250 + 3}", "port": 6378 if tls else 6379,
            "authString": "offline-" + short_hash(name, 24) if inputs.get("authEnabled") else None,
            "serverCaCerts": [{"cert": f"-----BEGIN CERTIFICATE-----\noffline-{short_hash(name, 32)}\n"
                                       "-----END CERTIFICATE-----\n", "sha1Fingerprint": short_hash(name, 40)}]
            if tls else []}


def _cloud_sql(name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    physical = inputs.get("name") or auto_name(name)
    loc = inputs.get("region") or region
    return {"name": physical, "connectionName": f"{GCP_PROJECT}:{loc}:{physical}",
            "privateIpAddress": f"10.100.1.{int(short_hash(name, 2), 16) % 250 + 3}",
            "selfLink": f"https://sqladmin.googleapis.com/sql/v1beta4/projects/{GCP_PROJECT}/instances/{physical}"}


def _gcp_network(name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    physical = inputs.get("name") or auto_name(name)
    return {"name": physical, "id": f"projects/{GCP_PROJECT}/global/networks/{physical}",
            "selfLink": f"https://www.googleapis.com/compute/v1/projects/{GCP_PROJECT}/global/networks/{physical}"}


AWS_OUTPUTS: dict[str, OutputFn] = {
    "aws:sqs/queue:Queue": _sqs_queue,
    "aws:dynamodb/table:Table": _dynamodb_table,
    "aws:lambda/function:Function": _lambda_function,
    "aws:apigatewayv2/api:Api": _apigw_api,
    "aws:apigatewayv2/stage:Stage": _apigw_stage,
    "aws:iam/role:Role": _named_arn("iam", "role/", global_=True),
    "aws:iam/policy:Policy": _named_arn("iam", "policy/", global_=True),
    "aws:cloudwatch/logGroup:LogGroup": _log_group,
    "aws:kms/key:Key": _kms_key,
    "aws:secretsmanager/secret:Secret": _secret,
    "aws:lb/loadBalancer:LoadBalancer": _load_balancer,
    "aws:lb/targetGroup:TargetGroup": _target_group,
    "aws:elasticache/replicationGroup:ReplicationGroup": _redis_group,
    "aws:rds/cluster:Cluster": _rds_cluster,
    "aws:ecr/repository:Repository": _ecr_repository,
    "aws:opensearch/serverlessCollection:ServerlessCollection": _opensearch_collection,
    "aws:s3/bucket:Bucket": _s3_bucket,
    "aws:s3/bucketV2:BucketV2": _s3_bucket,
    "aws:ecs/cluster:Cluster": _ecs_cluster,
    "aws:ecs/service:Service": _ecs_service,
    "aws:ecs/taskDefinition:TaskDefinition": _task_definition,
    "aws:sns/topic:Topic": _named_arn("sns", ""),
    "aws:wafv2/webAcl:WebAcl": _named_arn("wafv2", "regional/webacl/"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": _named_arn("cloudwatch", "alarm:"),
    "gcp:cloudrunv2/service:Service": _cloud_run,
    "gcp:redis/instance:Instance": _memorystore,
    "gcp:sql/databaseInstance:DatabaseInstance": _cloud_sql,
    "gcp:compute/network:Network": _gcp_network,
}


def resource_outputs(typ: str, name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    """Inputs echoed back plus the computed outputs a real provider would return."""
    package, service, kind = _type_parts(typ)
    extra: dict[str, Any] = {}
    if typ in AWS_OUTPUTS:
        extra = AWS_OUTPUTS[typ](name, inputs, region)
    elif package == "aws":
        physical = inputs.get("name") or auto_name(name)
        extra = {"arn": _aws_arn(service, region, f"{kind.lower()}/{physical}")}
        if "name" not in inputs and kind not in ("RolePolicy", "RolePolicyAttachment"):
            extra["name"] = physical
    elif package == "gcp":
        physical = inputs.get("name") or auto_name(name)
        extra = {"name": physical, "project": inputs.get("project") or GCP_PROJECT,
                 "selfLink": f"https://www.googleapis.com/{service}/v1/projects/{GCP_PROJECT}/{kind.lower()}s/{physical}"}
        if kind == "Topic" or kind == "Subscription":
            extra["id"] = f"projects/{GCP_PROJECT}/{kind.lower()}s/{physical}"
        if kind == "Account":
            extra["email"] = f"{inputs.get('accountId', physical)}@{GCP_PROJECT}.iam.gserviceaccount.com"
    elif package == "kubernetes":
        metadata = dict(inputs.get("metadata") or {})
        metadata.setdefault("name", auto_name(name))
        metadata.setdefault("namespace", "default")
        extra = {"metadata": metadata}
    elif package in ("docker", "docker-build"):
        image = inputs.get("imageName") or (inputs.get("tags") or [name])[0]
        # default= by type name: unknown values must not leak their memory address into the digest
        digest = "sha256:" + hashlib.sha256(json.dumps(inputs, sort_keys=True, default=lambda o: type(o).__name__).encode()).hexdigest()
        extra = {"repoDigest": f"{str(image).split(':')[0]}@{digest}", "digest": digest, "imageName": image,
                 "ref": f"{str(image).split(':')[0]}@{digest}"}
    return {**inputs, **extra}


def resource_id(typ: str, name: str, outputs: dict[str, Any]) -> str:
    if "id" in outputs and isinstance(outputs["id"], str):
        return outputs["id"]
    for key in ("name", "arn"):
        if isinstance(outputs.get(key), str):
            return outputs[key]
    return f"{name}-{short_hash(typ + name, 8)}"


def _policy_document(args: dict[str, Any]) -> dict[str, Any]:
    """Render `aws.iam.get_policy_document` statements into the JSON AWS would receive."""
    statements = []
    for stmt in args.get("statements") or []:
        rendered: dict[str, Any] = {}
        if stmt.get("sid"):
            rendered["Sid"] = stmt["sid"]
        rendered["Effect"] = stmt.get("effect") or "Allow"
        for key, out in (("actions", "Action"), ("notActions", "NotAction"),
                         ("resources", "Resource"), ("notResources", "NotResource")):
            values = stmt.get(key)
            if values:
                rendered[out] = values[0] if len(values) == 1 else sorted(values)
        for key, out in (("principals", "Principal"), ("notPrincipals", "NotPrincipal")):
            if stmt.get(key):
                principal: dict[str, Any] = {}
                for p in stmt[key]:
                    ids = p.get("identifiers") or []
                    principal[p["type"]] = ids[0] if len(ids) == 1 else ids
                rendered[out] = principal
        if stmt.get("conditions"):
            condition: dict[str, dict[str, Any]] = {}
            for cond in stmt["conditions"]:
                values = cond.get("values") or []
                condition.setdefault(cond["test"], {})[cond["variable"]] = values[0] if len(values) == 1 else values
            rendered["Condition"] = condition
        statements.append(rendered)
    document = {"Version": args.get("version") or "2012-10-17", "Statement": statements}
    return {"json": json.dumps(document, indent=2), "minifiedJson": json.dumps(document, separators=(",", ":")),
            "id": short_hash(json.dumps(document), 10)}


def invoke_result(token: str, args: dict[str, Any], region: str) -> dict[str, Any]:
    """Answers for the invokes our components (and most programs) make."""
    if token == "aws:index/getCallerIdentity:getCallerIdentity":
        return {"accountId": ACCOUNT_ID, "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/offline", "id": ACCOUNT_ID,
                "userId": "AIDAOFFLINEPLAN"}
    if token == "aws:index/getRegion:getRegion":
        return {"region": region, "name": region, "id": region, "endpoint": f"ec2.{region}.amazonaws.com",
                "description": region}
    if token == "aws:index/getPartition:getPartition":
        return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}
    if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
        names = [f"{region}{suffix}" for suffix in "abc"]
        return {"names": names, "zoneIds": [f"use1-az{i}" for i in (1, 2, 3)], "id": region}
    if token == "aws:iam/getPolicyDocument:getPolicyDocument":
        return _policy_document(args)
    if token == "aws:ec2/getVpc:getVpc":
        return {"id": "vpc-0offline", "cidrBlock": "172.31.0.0/16", "arn": _aws_arn("ec2", region, "vpc/vpc-0offline")}
    if token == "aws:ec2/getManagedPrefixList:getManagedPrefixList":
        return {"id": "pl-0offline", "name": args.get("name", "")}
    if token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
        registry = args.get("registryId") or ACCOUNT_ID
        return {"userName": "AWS", "password": "offline-ecr-token", "authorizationToken": "QVdTOm9mZmxpbmU=",
                "proxyEndpoint": f"https://{registry}.dkr.ecr.{region}.amazonaws.com", "id": region}
    if token == "aws:secretsmanager/getRandomPassword:getRandomPassword":
        return {"randomPassword": "offline" + short_hash(json.dumps(args, sort_keys=True), 32), "id": "offline"}
    if token == "gcp:organizations/getProject:getProject":
        return {"projectId": args.get("projectId") or GCP_PROJECT, "number": "123456789012",
                "name": args.get("projectId") or GCP_PROJECT, "id": f"projects/{GCP_PROJECT}"}
    if token == "gcp:organizations/getClientConfig:getClientConfig":
        return {"project": GCP_PROJECT, "region": DEFAULT_GCP_REGION, "zone": f"{DEFAULT_GCP_REGION}-a",
                "accessToken": "offline", "id": "offline"}
    return {}

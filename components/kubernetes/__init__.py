"""Kubernetes building blocks and topologies (any cluster: EKS, GKE, AKS, on-premises).

Pass a `pulumi_kubernetes.Provider` through `opts` to choose the cluster:

    from agent_infra.components.kubernetes import HybridAgent
    HybridAgent("agent", config, pulumi.ResourceOptions(providers=[k8s_provider]))
"""

from .config_map import AppConfigMap, AppConfigMapArgs
from .container_agent import QUEUE_GROUP, QUEUE_STREAM, ContainerAgent
from .hpa import Hpa, HpaArgs
from .hybrid_agent import HybridAgent
from .ingress import Ingress, IngressArgs
from .keda import KedaScaler, KedaScalerArgs
from .namespace import Namespace, NamespaceArgs
from .network_policy import NetworkPolicies, NetworkPoliciesArgs
from .pdb import Pdb, PdbArgs
from .postgres import Postgres, PostgresArgs
from .qdrant import Qdrant, QdrantArgs
from .redis import Redis, RedisArgs
from .secrets import AppSecrets, AppSecretsArgs
from .service import Service, ServiceArgs
from .service_account import ServiceAccount, ServiceAccountArgs
from .vpa import Vpa, VpaArgs
from .workload import Workload, WorkloadArgs

__all__ = [
    "QUEUE_GROUP", "QUEUE_STREAM", "AppConfigMap", "AppConfigMapArgs", "AppSecrets", "AppSecretsArgs",
    "ContainerAgent", "Hpa", "HpaArgs", "HybridAgent", "Ingress", "IngressArgs", "KedaScaler", "KedaScalerArgs",
    "Namespace", "NamespaceArgs", "NetworkPolicies", "NetworkPoliciesArgs", "Pdb", "PdbArgs", "Postgres",
    "PostgresArgs", "Qdrant", "QdrantArgs", "Redis", "RedisArgs", "Service", "ServiceAccount",
    "ServiceAccountArgs", "ServiceArgs", "Vpa", "VpaArgs", "Workload", "WorkloadArgs",
]

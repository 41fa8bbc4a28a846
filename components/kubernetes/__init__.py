"""Kubernetes building blocks and topologies (any cluster: EKS, GKE, AKS, on-premises).

Pass a `pulumi_kubernetes.Provider` through `opts` to choose the cluster:

    from components.kubernetes import HybridAgent
    HybridAgent("agent", config, pulumi.ResourceOptions(providers=[k8s_provider]))
"""

from components.kubernetes.config_map import AppConfigMap, AppConfigMapArgs
from components.kubernetes.container_agent import QUEUE_GROUP, QUEUE_STREAM, ContainerAgent
from components.kubernetes.hpa import Hpa, HpaArgs
from components.kubernetes.hybrid_agent import HybridAgent
from components.kubernetes.ingress import Ingress, IngressArgs
from components.kubernetes.keda import KedaScaler, KedaScalerArgs
from components.kubernetes.namespace import Namespace, NamespaceArgs
from components.kubernetes.network_policy import NetworkPolicies, NetworkPoliciesArgs
from components.kubernetes.pdb import Pdb, PdbArgs
from components.kubernetes.postgres import Postgres, PostgresArgs
from components.kubernetes.qdrant import Qdrant, QdrantArgs
from components.kubernetes.redis import Redis, RedisArgs
from components.kubernetes.secrets import AppSecrets, AppSecretsArgs
from components.kubernetes.service import Service, ServiceArgs
from components.kubernetes.service_account import ServiceAccount, ServiceAccountArgs
from components.kubernetes.vpa import Vpa, VpaArgs
from components.kubernetes.workload import Workload, WorkloadArgs

__all__ = [
    "QUEUE_GROUP", "QUEUE_STREAM", "AppConfigMap", "AppConfigMapArgs", "AppSecrets", "AppSecretsArgs",
    "ContainerAgent", "Hpa", "HpaArgs", "HybridAgent", "Ingress", "IngressArgs", "KedaScaler", "KedaScalerArgs",
    "Namespace", "NamespaceArgs", "NetworkPolicies", "NetworkPoliciesArgs", "Pdb", "PdbArgs", "Postgres",
    "PostgresArgs", "Qdrant", "QdrantArgs", "Redis", "RedisArgs", "Service", "ServiceAccount",
    "ServiceAccountArgs", "ServiceArgs", "Vpa", "VpaArgs", "Workload", "WorkloadArgs",
]

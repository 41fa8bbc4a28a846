"""AWS building blocks and topologies. One block a file; each is a ComponentResource."""

from components.aws.backup import Backup, BackupArgs
from components.aws.budget import Budget, BudgetArgs
from components.aws.cluster import Cluster, ClusterArgs
from components.aws.container_agent import ContainerAgent
from components.aws.database import Database, DatabaseArgs
from components.aws.fargate_service import FargateService, FargateServiceArgs
from components.aws.function import AgentFunction, AgentFunctionArgs
from components.aws.http_api import HttpApi, HttpApiArgs
from components.aws.hybrid_agent import HybridAgent
from components.aws.image import EcrImage, EcrImageArgs
from components.aws.load_balancer import LoadBalancer, LoadBalancerArgs
from components.aws.network import Network, NetworkArgs
from components.aws.observability import Observability, ObservabilityArgs
from components.aws.queue import Queue, QueueArgs
from components.aws.redis import Redis, RedisArgs
from components.aws.secrets import Secrets, SecretsArgs
from components.aws.serverless_agent import ServerlessAgent
from components.aws.session_table import SessionTable, SessionTableArgs
from components.aws.vector_collection import VectorCollection, VectorCollectionArgs
from components.aws.web_acl import WebAcl, WebAclArgs
from components.aws.websocket_api import WebSocketApi, WebSocketApiArgs

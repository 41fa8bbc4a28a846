"""AWS building blocks and topologies. One block a file; each is a ComponentResource."""

from .backup import Backup, BackupArgs
from .budget import Budget, BudgetArgs
from .cluster import Cluster, ClusterArgs
from .container_agent import ContainerAgent
from .database import Database, DatabaseArgs
from .fargate_service import FargateService, FargateServiceArgs
from .function import AgentFunction, AgentFunctionArgs
from .http_api import HttpApi, HttpApiArgs
from .hybrid_agent import HybridAgent
from .image import EcrImage, EcrImageArgs
from .load_balancer import LoadBalancer, LoadBalancerArgs
from .network import Network, NetworkArgs
from .observability import Observability, ObservabilityArgs
from .queue import Queue, QueueArgs
from .redis import Redis, RedisArgs
from .secrets import Secrets, SecretsArgs
from .serverless_agent import ServerlessAgent
from .session_table import SessionTable, SessionTableArgs
from .vector_collection import VectorCollection, VectorCollectionArgs
from .web_acl import WebAcl, WebAclArgs
from .websocket_api import WebSocketApi, WebSocketApiArgs

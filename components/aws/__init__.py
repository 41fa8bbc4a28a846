"""AWS building blocks and topologies. One block a file; each is a ComponentResource."""

from components.aws.function import AgentFunction, AgentFunctionArgs
from components.aws.http_api import HttpApi, HttpApiArgs
from components.aws.queue import Queue, QueueArgs
from components.aws.serverless_agent import ServerlessAgent
from components.aws.session_table import SessionTable, SessionTableArgs

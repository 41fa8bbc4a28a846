"""Tools the agent can call, and the registry to add more.

Register a tool with the decorator; the JSON Schema of its arguments is what the model sees::

    registry = ToolRegistry()

    @registry.tool("echo", "Repeat the text.", {"type": "object", "properties": {"text": {"type": "string"}},
                                                "required": ["text"]})
    async def echo(args: dict, ctx: ToolContext) -> str:
        return args["text"]

Built-ins: ``calculator`` (safe arithmetic), ``http_fetch`` (allowlisted hosts, SSRF guard),
``retrieve`` (search the vector memory of past results).
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .bounds import clip
from .llm import ToolSpec
from .models import DEFAULT_PRINCIPAL
from .netguard import BlockedDestination, NetPolicy, guarded_request
from .ports import VectorMemory


@dataclass
class ToolContext:
    session_id: str
    task_id: str
    memory: VectorMemory | None = None
    net_policy: NetPolicy = field(default_factory=NetPolicy)
    principal: str = DEFAULT_PRINCIPAL
    """Whose memory ``retrieve`` searches: a principal never sees another's past results."""


#: ``retrieve`` bounds: at most this many hits, each cut to this many bytes.
RETRIEVE_MAX_K = 5
RETRIEVE_HIT_BYTES = 600


ToolFn = Callable[[dict[str, Any], ToolContext], Awaitable[str]]


@dataclass
class Tool:
    spec: ToolSpec
    fn: ToolFn


class ToolError(RuntimeError):
    """A tool failed; the message becomes the observation the model sees."""


class ToolRegistry:
    def __init__(self) -> None:
        self._tools: dict[str, Tool] = {}

    def add(self, name: str, description: str, parameters: dict[str, Any], fn: ToolFn) -> None:
        self._tools[name] = Tool(ToolSpec(name=name, description=description, parameters=parameters), fn)

    def tool(self, name: str, description: str, parameters: dict[str, Any]) -> Callable[[ToolFn], ToolFn]:
        def register(fn: ToolFn) -> ToolFn:
            self.add(name, description, parameters, fn)
            return fn

        return register

    @property
    def specs(self) -> list[ToolSpec]:
        return [t.spec for t in self._tools.values()]

    def names(self) -> list[str]:
        return list(self._tools)

    async def call(self, name: str, arguments: dict[str, Any], ctx: ToolContext) -> str:
        tool = self._tools.get(name)
        if tool is None:
            raise ToolError(f"unknown tool {name!r}; available: {', '.join(self._tools)}")
        return await tool.fn(arguments, ctx)


# -- calculator --------------------------------------------------------------------------------
_BIN: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCS: dict[str, Callable[..., float]] = {
    "sqrt": math.sqrt,
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "log": math.log,
    "sin": math.sin,
    "cos": math.cos,
}
_NAMES = {"pi": math.pi, "e": math.e}


def safe_eval(expression: str) -> float | int:
    """Evaluate arithmetic without ``eval``: numbers, + - * / // % **, a few math functions."""
    if len(expression) > 200:
        raise ToolError("expression too long (max 200 characters)")
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise ToolError(f"not an arithmetic expression: {expression!r}") from exc

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
            left, right = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > 100:
                raise ToolError("exponent too large")
            return _BIN[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](ev(node.operand))
        if isinstance(node, ast.Name) and node.id in _NAMES:
            return _NAMES[node.id]
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _FUNCS
            and not node.keywords
        ):
            return _FUNCS[node.func.id](*[ev(a) for a in node.args])
        raise ToolError(f"unsupported element in expression: {ast.dump(node)[:60]}")

    try:
        return ev(tree)  # type: ignore[no-any-return]
    except ZeroDivisionError as exc:
        raise ToolError("division by zero") from exc


async def _calculator(args: dict[str, Any], ctx: ToolContext) -> str:
    value = safe_eval(str(args.get("expression", "")))
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


async def _http_fetch(args: dict[str, Any], ctx: ToolContext) -> str:
    url = str(args.get("url", ""))
    if ctx.net_policy.allowed_hosts is None or not ctx.net_policy.allowed_hosts:
        raise ToolError("http_fetch is disabled: no hosts allowlisted (AGENT_FETCH_ALLOWLIST)")
    try:
        response = await guarded_request("GET", url, ctx.net_policy)
    except BlockedDestination as exc:
        raise ToolError(f"refused: {exc}") from exc
    text = response.text[:4000]
    return f"HTTP {response.status_code}\n{text}"


async def _retrieve(args: dict[str, Any], ctx: ToolContext) -> str:
    if ctx.memory is None:
        return "no memory configured"
    try:
        k = min(RETRIEVE_MAX_K, max(1, int(args.get("k", 3))))
    except (TypeError, ValueError):
        k = 3
    hits = await ctx.memory.search(str(args.get("query", ""))[:2_000], k=k, namespace=ctx.principal)
    if not hits:
        return "no related past results"
    return "\n".join(f"- ({score:.2f}) {clip(text, RETRIEVE_HIT_BYTES)}" for text, score, _ in hits[:k])


def builtin_tools() -> ToolRegistry:
    registry = ToolRegistry()
    registry.add(
        "calculator",
        "Evaluate an arithmetic expression, e.g. '(2+3)*4' or 'sqrt(2)'.",
        {"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]},
        _calculator,
    )
    registry.add(
        "http_fetch",
        "GET a URL on an allowlisted host and return the start of its body.",
        {"type": "object", "properties": {"url": {"type": "string", "format": "uri"}}, "required": ["url"]},
        _http_fetch,
    )
    registry.add(
        "retrieve",
        "Search the memory of past results for text related to the query.",
        {
            "type": "object",
            "properties": {
                "query": {"type": "string"},
                "k": {"type": "integer", "minimum": 1, "maximum": RETRIEVE_MAX_K},
            },
            "required": ["query"],
        },
        _retrieve,
    )
    return registry

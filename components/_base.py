"""What every agent-infra component shares: the args base model and the child factory.

The args shape, settled for every component: a frozen pydantic model with attribute docstrings.
Users may pass either the model or a plain dict (the shape stack config and other Pulumi
languages use); `resolve_args` validates both the same way and raises `ConfigError` naming the
argument path. Each child is created through `ChildFactory`, which sets `parent=self`, applies
the component's tags and runs the user's per-child transform (the escape hatch), so the hatch
works identically under the Pulumi engine and under the offline plan's mocks.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import pulumi
from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import ConfigError, problems_from_validation_error

TransformFn = Callable[[dict[str, Any], pulumi.ResourceOptions], "tuple[dict[str, Any], pulumi.ResourceOptions] | None"]
Transform = Mapping[str, Any] | TransformFn
"""A dict deep-merged into a child's constructor args, or `fn(args, opts)` that edits them
in place or returns `(args, opts)`."""


class ComponentArgs(BaseModel):
    """Base for every component's args: frozen, unknown keys refused, docstrings kept."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        use_attribute_docstrings=True,
        arbitrary_types_allowed=True,
        populate_by_name=True,
    )


ArgsT = TypeVar("ArgsT", bound=BaseModel)


def resolve_args(model: type[ArgsT], args: ArgsT | Mapping[str, Any] | None, path: str) -> ArgsT:
    """Validate `args` (model instance, dict or None for defaults) into `model`.

    Raises `ConfigError` with one `path.key: problem` line per invalid key.
    """
    if isinstance(args, model):
        return args
    try:
        return model.model_validate(dict(args or {}))
    except ValidationError as error:
        raise ConfigError(problems_from_validation_error(error, path)) from None


def deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Return `base` with `override` merged in; nested dicts merge, everything else replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(dict(merged[key]), value)
        else:
            merged[key] = copy.deepcopy(value) if isinstance(value, dict | list) else value
    return merged


@functools.cache
def _accepts_tags(resource_cls: type) -> bool:
    try:
        # Generated Pulumi classes overload __init__; the real parameter list is _internal_init's.
        init = getattr(resource_cls, "_internal_init", resource_cls)
        return "tags" in inspect.signature(init).parameters
    except (TypeError, ValueError):
        return False


@functools.cache
def _parameters(resource_cls: Callable[..., Any]) -> frozenset[str] | None:
    """Keyword arguments a resource class takes (None: cannot tell, e.g. `**kwargs` only)."""
    try:
        init = getattr(resource_cls, "_internal_init", resource_cls)
        params = inspect.signature(init).parameters
    except (TypeError, ValueError):
        return None
    names = {n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    if not names - {"self", "resource_name", "opts", "__props__"}:
        return None
    return frozenset(names - {"self", "__self__", "__props__"})


class ChildFactory:
    """Creates a component's children: `parent=self`, tags, and the user's transform per role.

    `child("queue", aws.sqs.Queue, name, **kwargs)` builds the resource; `role` is the key users
    name in `transforms` to reach that child.
    """

    def __init__(
        self,
        parent: pulumi.Resource,
        transforms: Mapping[Any, Transform] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        self.parent = parent
        self.transforms = dict(transforms or {})
        self.tags = dict(tags or {})

    def __call__(
        self,
        role: str,
        resource_cls: Callable[..., Any],
        resource_name: str,
        /,
        opts: pulumi.ResourceOptions | None = None,
        **kwargs: Any,
    ) -> Any:
        opts = pulumi.ResourceOptions.merge(pulumi.ResourceOptions(parent=self.parent), opts)
        if self.tags and isinstance(resource_cls, type) and _accepts_tags(resource_cls):
            kwargs["tags"] = {**self.tags, **(kwargs.get("tags") or {})}
        transform = self.transforms.get(role)
        if isinstance(transform, Mapping):
            self._check_keys(role, resource_cls, transform)
            kwargs = deep_merge(kwargs, transform)
        elif callable(transform):
            result = transform(kwargs, opts)
            if result is not None:
                kwargs, opts = result
        return resource_cls(resource_name, opts=opts, **kwargs)

    def _check_keys(self, role: str, resource_cls: Callable[..., Any], transform: Mapping[str, Any]) -> None:
        """A transform key the child's constructor does not take would fail deep inside the SDK
        (or, for `**kwargs` constructors, be dropped): name component, role and key instead."""
        accepted = _parameters(resource_cls)
        if accepted is None:
            return
        unknown = sorted(set(transform) - accepted)
        if unknown:
            owner = f"{type(self.parent).__name__}({getattr(self.parent, '_name', '?')!r})"
            module = str(getattr(resource_cls, "__module__", "")).removeprefix("pulumi_").rpartition(".")[0]
            kind = f"{module}.{getattr(resource_cls, '__qualname__', resource_cls)}".lstrip(".")
            raise ConfigError([f"{owner}.transforms.{role}.{key}: not an argument of {kind}; "
                               f"it takes: {', '.join(sorted(accepted - {'resource_name', 'opts'}))}"
                               for key in unknown])


_PHYSICAL_SAFE = re.compile(r"[^a-zA-Z0-9-]+")


def physical_name(name: str, max_length: int = 63, separator: str = "-") -> str:
    """`<project>-<stack>-<name>`, cut to the service's length limit.

    Deterministic so a stack's names are stable between runs; cut names keep a short hash of
    the full name so two long names do not collide.
    """
    full = separator.join([pulumi.get_project(), pulumi.get_stack(), name])
    full = _PHYSICAL_SAFE.sub(separator, full).strip(separator)
    if len(full) <= max_length:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:7]
    return full[: max_length - 8].rstrip(separator) + separator + digest

"""The engine side of an offline run: a recording monitor and deterministic provider mocks.

Every registration is recorded as a `PlannedResource` with its inputs in the provider's wire
names, secrets masked and unknowns marked; outputs come from `mock_outputs`.
"""

from __future__ import annotations

from typing import Any

from pulumi.output import Unknown
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc

from . import mock_outputs
from .plan import SECRET_MASK, STACK_TYPE, UNKNOWN_MARK, PlannedResource


def _asset_json(value: Any) -> dict[str, Any]:
    """Assets and archives as JSON: where their content comes from, not the content."""
    from pulumi import asset

    if isinstance(value, asset.AssetArchive):
        return {"archive": {"assets": {k: _asset_json(v) for k, v in value.assets.items()}}}
    if isinstance(value, asset.FileArchive | asset.RemoteArchive | asset.FileAsset | asset.RemoteAsset):
        kind = "archive" if isinstance(value, asset.Archive) else "asset"
        return {kind: {"path" if hasattr(value, "path") else "uri": getattr(value, "path", getattr(value, "uri", None))}}
    if isinstance(value, asset.StringAsset):
        return {"asset": {"text": value.text}}
    return {"asset": {"repr": type(value).__name__}}


def _plain(value: Any, path: str, secret_paths: list[str], reveal: bool = False) -> Any:
    """Deserialized RPC value -> plain JSON, masking secrets and marking unknowns."""
    from pulumi import asset

    if isinstance(value, asset.Asset | asset.Archive):
        return _asset_json(value)
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            secret_paths.append(path)
            return _plain(value.get("value"), path, [], reveal) if reveal else SECRET_MASK
        if value.get(rpc._special_sig_key) == rpc._special_archive_sig:
            return {"archive": {k: v for k, v in value.items() if k != rpc._special_sig_key}}
        if value.get(rpc._special_sig_key) == rpc._special_asset_sig:
            return {"asset": {k: v for k, v in value.items() if k != rpc._special_sig_key}}
        return {k: _plain(v, f"{path}.{k}" if path else k, secret_paths, reveal) for k, v in value.items()
                if not k.startswith("__")}
    if isinstance(value, list):
        return [_plain(v, f"{path}.{i}", secret_paths, reveal) for i, v in enumerate(value)]
    if isinstance(value, Unknown) or (isinstance(value, str) and value == rpc.UNKNOWN):
        return UNKNOWN_MARK
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _unwrap_secrets(value: Any) -> Any:
    """Same value with secret wrappers removed, for the mocks to compute outputs from."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return _unwrap_secrets(value.get("value"))
        return {k: _unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap_secrets(v) for v in value]
    return value


class PlanMocks(pulumi_mocks.Mocks):
    """Deterministic provider outputs and invoke answers (see `agent_infra.offline.mock_outputs`)."""

    def __init__(self, default_region: str) -> None:
        self.default_region = default_region
        self.provider_regions: dict[str, str] = {}

    def region_for(self, provider_ref: str | None) -> str:
        if provider_ref:
            urn = provider_ref.split("::" + provider_ref.rsplit("::", 1)[-1])[0] if provider_ref.count("::") > 3 else provider_ref
            for key, region in self.provider_regions.items():
                if provider_ref.startswith(key) or urn.startswith(key):
                    return region
        return self.default_region

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        inputs = _unwrap_secrets(args.inputs)
        if args.typ.startswith("pulumi:providers:"):
            return f"{args.name}-provider-id", args.inputs
        region = inputs.get("region") if isinstance(inputs.get("region"), str) else self.region_for(args.provider)
        outputs = mock_outputs.resource_outputs(args.typ, args.name, inputs, region)
        # Echo the original (possibly secret-wrapped) inputs so secrets stay secret downstream.
        for key, value in args.inputs.items():
            outputs[key] = value
        return mock_outputs.resource_id(args.typ, args.name, outputs), outputs

    def call(self, args: pulumi_mocks.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        given = args.args.get("region")
        region = given if isinstance(given, str) else self.region_for(args.provider)
        return mock_outputs.invoke_result(args.token, _unwrap_secrets(args.args), region)


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The stock mock monitor, plus a record of every registration's options and outputs."""

    def __init__(self, mocks: PlanMocks, reveal_secrets: bool = False) -> None:
        super().__init__(mocks)
        self.plan_mocks = mocks
        self.reveal_secrets = reveal_secrets
        self.registrations: list[PlannedResource] = []
        self.by_urn: dict[str, PlannedResource] = {}
        self.stack_outputs: dict[str, Any] = {}
        self.stack_urn: str | None = None

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type == STACK_TYPE:
            self.stack_urn = response.urn
            return response
        secret_paths: list[str] = []
        raw_inputs = rpc.deserialize_properties(request.object, keep_unknowns=True)
        if request.type.startswith("pulumi:providers:"):
            region = _unwrap_secrets(raw_inputs).get("region")
            if isinstance(region, str):
                self.plan_mocks.provider_regions[response.urn] = region
        registered = self.resources.get(response.urn)
        outputs: dict[str, Any] = {}
        if request.custom and registered is not None:
            outputs = _plain(_unwrap_secrets(registered.state), "", [])
            for key in list(outputs):
                if key in raw_inputs:
                    outputs.pop(key)  # keep only what the provider computed
        resource = PlannedResource(
            type=request.type,
            name=request.name,
            urn=response.urn,
            parent=request.parent or None,
            provider=request.provider.split("::" + request.provider.rsplit("::", 1)[-1])[0]
            if request.provider else None,
            custom=bool(request.custom),
            inputs=_plain(raw_inputs, "", secret_paths, self.reveal_secrets),
            outputs=outputs,
            id=response.id or None,
            dependencies=sorted(set(request.dependencies)),
            protect=bool(request.protect),
            aliases=[a.urn for a in request.aliases if a.urn] if hasattr(request, "aliases") else [],
            secret_paths=secret_paths,
        )
        if resource.provider and resource.provider.startswith("urn:") is False:
            resource.provider = None
        self.registrations.append(resource)
        self.by_urn[resource.urn] = resource
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:
        secret_paths: list[str] = []
        outputs = _plain(rpc.deserialize_properties(request.outputs, keep_unknowns=True), "", secret_paths)
        if request.urn == self.stack_urn:
            self.stack_outputs = outputs
        elif request.urn in self.by_urn:
            self.by_urn[request.urn].outputs = outputs
        return super().RegisterResourceOutputs(request)



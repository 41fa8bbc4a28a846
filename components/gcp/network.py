"""`Network`: a custom-mode VPC and one subnet for Cloud Run direct VPC egress, plus the private
services access range and peering that Cloud SQL and Memorystore use for private IPs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_gcp as gcp
from pydantic import Field

from .._base import ChildFactory, ComponentArgs, Transform, resolve_args


class NetworkArgs(ComponentArgs):
    """VPC + subnet + private services access. Cost: the VPC and peering are free; flow logs bill
    per GB ingested (about $0.50/GB)."""

    region: str
    """Region of the subnet (the Cloud Run services' region, e.g. `us-central1`)."""
    subnet_cidr: str = Field("10.40.0.0/20", pattern=r"^\d{1,3}(\.\d{1,3}){3}/(1[6-9]|2[0-8])$")
    """Subnet range for direct VPC egress. Cloud Run takes addresses from it as instances scale
    (about 2 per instance), so /20 leaves room for hundreds. Changing it replaces the subnet."""
    private_services_prefix_length: int = Field(16, ge=16, le=24)
    """Size of the range reserved for Google-managed services (Cloud SQL, Memorystore) peered
    into the VPC. /16 is Google's recommendation; a smaller range limits future instances."""
    flow_logs: bool = True
    """VPC flow logs on the subnet (5-second aggregation, 50% sampling)."""
    transforms: Mapping[Literal["network", "private_connection", "private_range", "subnet"], Transform] = {}
    """Escape hatch per child role (`network`, `private_connection`, `private_range`, `subnet`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""


class Network(pulumi.ComponentResource):
    """A private network for the agent: nothing here is reachable from the internet."""

    network_id: pulumi.Output[str]
    """`projects/P/global/networks/NAME`: Memorystore's authorized network, Cloud SQL's private network."""
    subnet_id: pulumi.Output[str]
    """The subnet Cloud Run's direct VPC egress attaches to."""
    private_range_name: pulumi.Output[str]
    """The private services access range (Memorystore's `reserved_ip_range`)."""

    def __init__(self, name: str, args: NetworkArgs | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(NetworkArgs, args, name)
        super().__init__("agent-infra:gcp:Network", name, None, opts)
        child = ChildFactory(self, args.transforms)
        self.network = child("network", gcp.compute.Network, name, auto_create_subnetworks=False,
                             routing_mode="REGIONAL", description="agent-infra: private network of the agent")
        log_config = ({"aggregation_interval": "INTERVAL_5_SEC", "flow_sampling": 0.5,
                       "metadata": "INCLUDE_ALL_METADATA"} if args.flow_logs else None)
        self.subnet = child("subnet", gcp.compute.Subnetwork, f"{name}-subnet", network=self.network.id,
                            region=args.region, ip_cidr_range=args.subnet_cidr, private_ip_google_access=True,
                            log_config=log_config)
        self.private_range = child("private_range", gcp.compute.GlobalAddress, f"{name}-private-range",
                                   purpose="VPC_PEERING", address_type="INTERNAL",
                                   prefix_length=args.private_services_prefix_length, network=self.network.id)
        self.private_connection = child("private_connection", gcp.servicenetworking.Connection,
                                        f"{name}-private-connection", network=self.network.id,
                                        service="servicenetworking.googleapis.com",
                                        reserved_peering_ranges=[self.private_range.name])
        self.network_id = self.network.id
        self.subnet_id = self.subnet.id
        self.private_range_name = self.private_range.name
        self.register_outputs({"network_id": self.network_id, "subnet_id": self.subnet_id,
                               "private_range_name": self.private_range_name})

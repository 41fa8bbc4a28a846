"""Outbound HTTP with SSRF protection, shared by callbacks and any tool that fetches URLs.

Done the careful way: https only; the host is resolved once and refused unless *every* address
is globally routable (loopback, private, link-local incl. 169.254.169.254, CGNAT 100.64/10,
unique-local, IPv4-mapped IPv6 and cloud metadata addresses refused); the connection goes to the
pinned address (TLS still verifies the original name via SNI), redirects are never followed,
the port must be allowlisted, and the response size and total time are capped.
``NetPolicy(allow_private=True)`` lifts the address, scheme and port checks: tests and labs only.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

_METADATA = {
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("169.254.170.2"),
    ipaddress.ip_address("100.100.100.200"),
    ipaddress.ip_address("fd00:ec2::254"),
}


class BlockedDestination(ValueError):
    """The URL is not allowed by the outbound policy; never retried."""


@dataclass(frozen=True)
class NetPolicy:
    allow_private: bool = False
    allowed_ports: frozenset[int] = frozenset({443, 8443})
    allowed_hosts: frozenset[str] | None = None
    """If set, only these hosts (exact, or ``*.suffix``) may be reached."""
    max_bytes: int = 1_048_576
    timeout_seconds: float = 10.0


@dataclass
class GuardedResponse:
    status_code: int
    headers: httpx.Headers
    body: bytes
    address: str
    truncated: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def address_is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            return address_is_public(mapped)
        if ip.teredo is not None:
            return False
    if ip in _METADATA:
        return False
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


def host_allowed(host: str, allowed: frozenset[str]) -> bool:
    host = host.lower().rstrip(".")
    for pattern in allowed:
        pattern = pattern.lower()
        if pattern.startswith("*.") and host.endswith(pattern[1:]):
            return True
        if host == pattern:
            return True
    return False


async def resolve_checked(url: str, policy: NetPolicy) -> tuple[httpx.URL, str, str]:
    """Validate ``url`` and resolve it once: returns (url, host, pinned address)."""
    parts = urlsplit(url)
    scheme = (parts.scheme or "").lower()
    if scheme not in ("https", "http"):
        raise BlockedDestination(f"{url!r}: scheme must be https")
    if scheme == "http" and not policy.allow_private:
        raise BlockedDestination(f"{url!r}: plain http refused; use https")
    host = parts.hostname
    if not host:
        raise BlockedDestination(f"{url!r}: no host")
    if parts.username or parts.password:
        raise BlockedDestination(f"{url!r}: credentials in URL refused")
    port = parts.port or (443 if scheme == "https" else 80)
    if not policy.allow_private and port not in policy.allowed_ports:
        raise BlockedDestination(f"{url!r}: port {port} not in allowed ports {sorted(policy.allowed_ports)}")
    if policy.allowed_hosts is not None and not host_allowed(host, policy.allowed_hosts):
        raise BlockedDestination(f"{url!r}: host {host!r} is not in the allowlist")
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise BlockedDestination(f"{url!r}: cannot resolve {host!r}: {exc}") from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        raise BlockedDestination(f"{url!r}: {host!r} has no address")
    if not policy.allow_private:
        bad = [str(a) for a in addresses if not address_is_public(a)]
        if bad:
            raise BlockedDestination(f"{url!r}: {host!r} resolves to non-public address(es) {bad}")
    pinned = str(addresses[0])
    return httpx.URL(url), host, pinned


async def guarded_request(
    method: str,
    url: str,
    policy: NetPolicy,
    *,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
) -> GuardedResponse:
    """Send one request under ``policy``; raises :class:`BlockedDestination` or ``httpx.HTTPError``."""
    target, host, pinned = await resolve_checked(url, policy)
    hdrs = {"host": target.netloc.decode("ascii"), **(headers or {})}
    pinned_url = target.copy_with(host=pinned)
    extensions = {"sni_hostname": host} if target.scheme == "https" else {}
    async with httpx.AsyncClient(follow_redirects=False, timeout=policy.timeout_seconds, trust_env=False) as client:
        request = client.build_request(method, pinned_url, headers=hdrs, content=content, extensions=extensions)
        async with asyncio.timeout(policy.timeout_seconds):
            response = await client.send(request, stream=True)
            try:
                body = bytearray()
                truncated = False
                async for part in response.aiter_bytes():
                    body.extend(part)
                    if len(body) > policy.max_bytes:
                        truncated = True
                        del body[policy.max_bytes :]
                        break
            finally:
                await response.aclose()
    return GuardedResponse(response.status_code, response.headers, bytes(body), pinned, truncated)

"""TLS options shared by the Redis adapters (queue and state)."""

from __future__ import annotations

from typing import Any


def tls_options(url: str, ca_cert: str | None) -> dict[str, Any]:
    """Client kwargs that trust `ca_cert` (PEM) for a `rediss://` URL; nothing for plain `redis://`.

    Certificates and host names are always verified; a private CA is added, never a bypass.
    """
    if ca_cert and url.startswith("rediss://"):
        return {"ssl_ca_data": ca_cert, "ssl_cert_reqs": "required"}
    return {}

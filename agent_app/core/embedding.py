"""A dependency-free text embedding: hashed word and character-trigram features, L2-normalised.

Good enough to find past results that share words with a query; deterministic and offline.
Real deployments can swap in a provider's embedding model behind the same function signature.
"""

from __future__ import annotations

import hashlib
import math
import re

DIMENSIONS = 256
_WORD = re.compile(r"[a-z0-9]+")


def embed(text: str, dimensions: int = DIMENSIONS) -> list[float]:
    vector = [0.0] * dimensions
    words = _WORD.findall(text.lower())
    features = words + [w[i : i + 3] for w in words if len(w) > 3 for i in range(len(w) - 2)]
    for feature in features:
        digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
        index = int.from_bytes(digest[:4], "little") % dimensions
        sign = 1.0 if digest[4] & 1 else -1.0
        vector[index] += sign * (2.0 if feature in words else 1.0)
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))

"""Size bounds shared by the session, the tools and the memory writer."""

from __future__ import annotations


def clip(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` of UTF-8 (whole characters), marked when cut."""
    data = text.encode()
    if len(data) <= max_bytes:
        return text
    marker = f" [cut: {len(data)} bytes]"
    return data[: max(0, max_bytes - len(marker))].decode(errors="ignore") + marker


def memory_text(message: str, result: str, steps: list[dict[str, object]], max_bytes: int = 2_048) -> str:
    """What a finished run adds to the vector memory: the question and the answer, with every
    text a ``retrieve`` call returned taken out of the answer, so a result never re-embeds what
    retrieval gave it (otherwise each identical question stores its predecessors again and the
    memory, and every answer drawn from it, grows geometrically), and cut to ``max_bytes``."""
    answer = result
    for step in steps:
        content = step.get("content")
        if step.get("type") == "observation" and isinstance(content, dict) and content.get("tool") == "retrieve":
            output = str(content.get("output") or "")
            if output:
                answer = answer.replace(output, "[retrieved]")
    return clip(f"Q: {clip(message, 1_024)}\nA: {answer}", max_bytes)

"""The chat page at ``/``: static files shipped in the package (``agent_app/static``), no build step."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


def mount_web_ui(app: FastAPI) -> None:
    """``GET /`` serves the page; ``/ui/*`` its script and style sheet."""
    index = STATIC_DIR / "index.html"

    @app.get("/", include_in_schema=False)
    async def web_ui() -> FileResponse:
        # no-cache: an upgraded server must not be driven by a stale script
        return FileResponse(index, media_type="text/html", headers={"Cache-Control": "no-cache"})

    app.mount("/ui", StaticFiles(directory=STATIC_DIR), name="ui")

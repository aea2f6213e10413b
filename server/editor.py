"""The built browser editor (web/dist in the package): index.html at "/", its files beside it."""
from __future__ import annotations

from pathlib import Path

from aiohttp import web

import latentgraph.web
from latentgraph.server.state import failure, inside

DIST = Path(latentgraph.web.__file__).resolve().parent / "dist"
FOLDER = web.AppKey("editor", Path)  # the app's build folder (tests use their own)

routes = web.RouteTableDef()


@routes.get("/", name="editor:page")  # the name keeps it out of the API's CSP (server/security.py)
async def editor_page(request: web.Request) -> web.StreamResponse:
    """The browser editor."""
    index = request.app[FOLDER] / "index.html"
    if not index.is_file():
        return web.Response(status=404, content_type="text/html", text=(
            "<h1>latentgraph</h1><p>The editor is not built (cd web &amp;&amp; npm ci &amp;&amp; npm run build). "
            "The API is at <a href='api/openapi.json'>api/openapi.json</a>.</p>"))
    return web.FileResponse(index, headers={"Cache-Control": "no-cache"})


@routes.get("/{path:.+}", name="editor:file")
async def editor_file(request: web.Request) -> web.StreamResponse:
    """Other files of the built editor (scripts, styles); anything unknown is a 404."""
    path = request.match_info["path"]
    found = None if any(part.startswith(".") for part in path.split("/")) else inside(request.app[FOLDER], path)
    if found is None:
        raise failure(404, f"not found: /{path}")
    # Bundles have content-hashed names: they never change under the same URL.
    cache = "public, max-age=31536000, immutable" if path.startswith("assets/") else "no-cache"
    return web.FileResponse(found, headers={"Cache-Control": cache})

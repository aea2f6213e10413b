"""Who may talk to the server.

- Bound to loopback (the default), no token is needed, but the `Host` header must name a loopback
  address: a page on another site that re-binds its DNS name to 127.0.0.1 is refused.
- Bound to any other address, a token is required on every request: `Authorization: Bearer T`,
  `?token=T`, or the cookie set after the first request that carried it (so that the editor's own
  scripts and images load without putting the token in every URL).
- Requests that change state, and the websocket, are refused when their `Origin` is not the
  server's own origin; requests a browser marks as cross-site are refused outright, but for a link
  followed to one of the editor's pages. A page the user visits can thus neither queue jobs nor
  read results, through our API or ComfyUI's (server/comfy_protocol.py), nor embed output images.
"""
from __future__ import annotations

import hmac
import ipaddress
import secrets

from aiohttp import web
from yarl import URL

COOKIE = "latentgraph_token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def is_loopback(host: str) -> bool:
    """True for localhost and loopback IP addresses; wildcard and other addresses are not."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    return secrets.token_urlsafe(24)


def _refuse(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _request_token(request: web.Request) -> tuple[str | None, bool]:
    """The token the request carries, and whether it came in the query string."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip(), False
    if "token" in request.query:
        return request.query["token"], True
    return request.cookies.get(COOKIE), False


def _own_origin(request: web.Request) -> URL:
    return URL.build(scheme=request.scheme, authority=request.host)


def _host_name(request: web.Request) -> str:
    try:
        return URL.build(scheme="http", authority=request.host).host or ""
    except ValueError:
        return ""


def same_origin(request: web.Request) -> bool:
    """Whether the request's Origin (when it has one) is this server's own origin."""
    origin = request.headers.get("Origin")
    if origin is None:  # not sent by a browser for a cross-origin request: a script or a same-origin GET
        return True
    try:
        theirs, ours = URL(origin), _own_origin(request)
        return (theirs.scheme, (theirs.host or "").lower(), theirs.port) == \
            (ours.scheme, (ours.host or "").lower(), ours.port)
    except ValueError:  # "null" (sandboxed frames, file://) and malformed origins
        return False


def _is_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def guard(token: str | None) -> web.middleware:
    """The middleware enforcing the rules above; `token` None means loopback-only without a token."""

    @web.middleware
    async def middleware(request: web.Request, handler):
        from_query = False
        if token is not None:
            given, from_query = _request_token(request)
            if given is None or not hmac.compare_digest(given.encode(), token.encode()):
                return _refuse(401, "this server needs its access token: open the URL it printed "
                                    "(…/?token=…) or send 'Authorization: Bearer TOKEN'")
        else:
            if not is_loopback(_host_name(request)):
                return _refuse(403, f"Host {request.host!r} is not a loopback address; serve on a "
                                    "non-loopback address with a token to reach this server by that name")
        cross_site = request.headers.get("Sec-Fetch-Site") == "cross-site"
        if (request.method not in SAFE_METHODS or _is_websocket(request)) and not same_origin(request):
            return _refuse(403, f"cross-origin request refused (Origin {request.headers.get('Origin')!r})")
        navigation = request.headers.get("Sec-Fetch-Mode") == "navigate"
        if cross_site and (request.path.startswith("/api/") or request.path == "/ws" or not navigation):
            return _refuse(403, "cross-site request refused")
        response = await handler(request)
        if from_query and not _is_websocket(request) and request.cookies.get(COOKIE) != token:
            # Same-site-only, script-invisible cookie: the editor's assets then load without the token.
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
        return response

    return middleware

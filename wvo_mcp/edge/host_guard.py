"""DNS-rebinding protection on every HTTP route, and the origins it compares (HostGuard).

A Host header naming no server here, or a browser page of another origin, is refused before
any route sees the request; the dashboard's changes must come from its own origin exactly.
"""

import ipaddress
from collections.abc import Sequence
from urllib.parse import urlsplit

from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

DEFAULT_PORTS = {"http": 80, "https": 443}
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def netloc(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


def origin(scheme: str, host: str, port: int | None) -> str:
    """An origin as a browser writes it: lower case, IPv6 in brackets, no default port."""
    scheme = scheme.lower()
    return f"{scheme}://{netloc(host.lower(), None if port == DEFAULT_PORTS[scheme] else port)}"


def origin_of(url: str) -> str | None:
    """The origin of an absolute http(s) URL; None for anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a port that is no number, or out of range
        return None
    if parts.scheme.lower() not in DEFAULT_PORTS or not parts.hostname:
        return None
    return origin(parts.scheme, parts.hostname, port)


def foreign_origin(given: str | None, referer: str | None, own: Sequence[str]) -> str | None:
    """What shows that a request comes from a page of another origin than `own`, or None.

    A browser sends Origin with every POST (an empty or `null` one is no origin of ours); an
    old one may send only a Referer, which must then be ours. A client sending neither is no
    browser page, and a page cannot make a browser send neither."""
    if given is not None:
        return None if given.lower() in own else f"Invalid Origin header {given!r}"
    found = origin_of(referer) if referer else None
    if referer and found not in own:
        shown = repr(found) if found else "(none: not an http(s) URL)"
        return f"No Origin header, and the Referer's origin {shown} is not this server's"
    return None


class HostGuard:
    """DNS-rebinding protection on every route (MCP, its metadata, the dashboard): a Host
    header naming no server here gets 421 and a browser page of another origin 403, each
    saying what would be accepted. It is the only such check: the SDK's is off.

    Under the `exact` paths (the dashboard) a request that changes something (any method but
    GET, HEAD, OPTIONS) must come from one of `origins` exactly: scheme, host and port. A
    page on another port of the same host is the same site, so a SameSite cookie rides
    along with its form; only its Origin tells it apart (login CSRF)."""

    def __init__(
        self,
        app: ASGIApp,
        settings: TransportSecuritySettings,
        origins: tuple[str, ...] = (),
        exact: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.settings = settings
        self.check = TransportSecurityMiddleware(settings)
        self.origins = origins
        self.exact = exact

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope)
            refused = await self.check.validate_request(request, is_post=False)
            # A foreign Host first; then a dashboard POST's Origin, said as the exact check
            # says it (it refuses every Origin the loose one does, and more).
            wrong = None if refused and refused.status_code == 421 else self._foreign(request)
            if wrong is not None:
                await self._exact_refusal(wrong)(scope, receive, send)
                return
            if refused is not None:
                await self._refusal(request, refused.status_code)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _foreign(self, request: Request) -> str | None:
        """Why a request that changes something under an `exact` path is not from one of
        our own pages, or None."""
        path = request.url.path
        if request.method in SAFE_METHODS or not any(
            path == p or path.startswith(f"{p}/") for p in self.exact
        ):
            return None
        headers = request.headers
        return foreign_origin(headers.get("origin"), headers.get("referer"), self.origins)

    def _exact_refusal(self, wrong: str) -> Response:
        said = (
            f"{wrong}: the dashboard takes a sign-in, a sign-out or an action only from its "
            f"own pages, at {' or '.join(self.origins)} exactly (scheme, host and port; open "
            "the dashboard there); other clients send no Origin. Nothing was done"
        )
        return PlainTextResponse(said, status_code=403)

    def _refusal(self, request: Request, status: int) -> Response:
        hosts = ", ".join(h.replace(":*", ":PORT") for h in self.settings.allowed_hosts)
        if status == 421:
            said = (
                f"Invalid Host header {request.headers.get('host')!r}: this server answers "
                f"to {hosts}; start it with --allowed-host NAME to add the name a reverse "
                "proxy or DNS gives it"
            )
        else:
            said = (
                f"Invalid Origin header {request.headers.get('origin')!r}: a browser may "
                f"call this server only from its own pages (hosts {hosts}); other clients "
                "send no Origin"
            )
        return PlainTextResponse(said, status_code=status)

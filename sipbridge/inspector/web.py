"""The inspector's web app on ``inspector_port``: the calls list, call pages, pcap downloads and the JSON API.

Every request needs a LiveKit token with the SIP ``admin`` grant, signed with the node's API key and secret: as
``Authorization: Bearer <token>``, or in the cookie that signing in with one sets (it holds the token itself and
lapses with it). Without one the answer is 401 (the sign-in form for a browser); a token without the grant gets
403. The pages show callers' numbers and the SIP of every call, hence loopback by default.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from aiohttp import web

from sipbridge.inspector import pages, views
from sipbridge.inspector.access import AccessCheck, Verdict, bearer_token
from sipbridge.inspector.book import TraceBook
from sipbridge.inspector.pcap import pcap_file
from sipbridge.inspector.trace import CallTrace

COOKIE = "sipbridge_inspector"
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class InspectorApp:
    def __init__(self, book: TraceBook, api_key: str, api_secret: str, clock: Callable[[], float] = time.time) -> None:
        self.book = book
        self.access = AccessCheck(api_key, api_secret)
        self.clock = clock

    def application(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        app.router.add_get("/", self.index)
        app.router.add_get("/login", self.login_form)
        app.router.add_post("/login", self.login)
        app.router.add_post("/logout", self.logout)
        app.router.add_get("/calls/{key}", self.call)
        app.router.add_get("/calls/{key}/pcap", self.pcap)
        app.router.add_get("/api/calls", self.api_calls)
        app.router.add_get("/api/calls/{key}", self.api_call)
        return app

    # -- access --------------------------------------------------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/login":
            response = await handler(request)
        else:
            token = bearer_token(request.headers.get("Authorization")) or request.cookies.get(COOKIE)
            verdict = self.access.verdict(token)
            if verdict.status != 200:
                response = self._refusal(request, verdict)
            else:
                try:
                    response = await handler(request)
                except web.HTTPNotFound as e:
                    response = web.Response(text=e.text, status=404)
        response.headers.update(_SECURITY_HEADERS)
        return response

    def _refusal(self, request: web.Request, verdict: Verdict) -> web.Response:
        headers = {"WWW-Authenticate": 'Bearer realm="sipbridge inspector"'} if verdict.status == 401 else {}
        if request.path.startswith("/api/") or "text/html" not in request.headers.get("Accept", ""):
            return web.json_response({"error": verdict.reason}, status=verdict.status, headers=headers)
        page = pages.login_page(verdict.reason, request.path_qs)
        return web.Response(text=page, content_type="text/html", status=verdict.status, headers=headers)

    async def login_form(self, request: web.Request) -> web.Response:
        return web.Response(text=pages.login_page(next_path=request.query.get("next", "/")), content_type="text/html")

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        token = str(form.get("token", "")).strip()
        next_path = str(form.get("next", "/"))
        if not next_path.startswith("/") or next_path.startswith("//"):
            next_path = "/"  # only this site's pages: no open redirect
        verdict = self.access.verdict(token)
        if verdict.status != 200:
            page = pages.login_page(verdict.reason, next_path)
            return web.Response(text=page, content_type="text/html", status=verdict.status)
        max_age = max(0, int(verdict.expires - self.clock())) if verdict.expires is not None else None
        response = web.Response(status=303, headers={"Location": next_path})
        response.set_cookie(COOKIE, token, max_age=max_age, httponly=True, samesite="Strict", path="/")
        return response

    async def logout(self, request: web.Request) -> web.Response:
        response = web.Response(status=303, headers={"Location": "/login"})
        response.del_cookie(COOKIE, path="/")
        return response

    # -- pages ---------------------------------------------------------------------------------------------------

    def _trace(self, request: web.Request) -> CallTrace:
        trace = self.book.get(request.match_info["key"])
        if trace is None:
            raise web.HTTPNotFound(text="no such call (it may have been dropped: inspector.keep_calls)")
        return trace

    async def index(self, request: web.Request) -> web.Response:
        return web.Response(text=pages.index_page(self.book, self.clock()), content_type="text/html")

    async def call(self, request: web.Request) -> web.Response:
        page = pages.call_page(self.book, self._trace(request), self.clock())
        return web.Response(text=page, content_type="text/html")

    async def pcap(self, request: web.Request) -> web.Response:
        trace = self._trace(request)
        name = quote(f"call-{trace.summary.lk_call_id or trace.id}.pcap", safe="")
        return web.Response(
            body=pcap_file(views.ladder_messages(self.book, trace)),
            content_type="application/vnd.tcpdump.pcap",
            headers={"Content-Disposition": f"attachment; filename={name}"},
        )

    async def api_calls(self, request: web.Request) -> web.Response:
        now = self.clock()
        return web.json_response(
            {
                "active": [views.summary(t, now) for t in self.book.active()],
                "ended": [views.summary(t, now) for t in self.book.ended()],
                "registrations": [views.summary(t, now) for t in self.book.registrations()],
            }
        )

    async def api_call(self, request: web.Request) -> web.Response:
        return web.json_response(views.detail(self.book, self._trace(request), self.clock()))

"""The dashboard's HTTP routes: thin handlers over the orchestrator, who may view or act.

The dashboard's routes on the HTTP server (`serve --http --dashboard`): thin Starlette
handlers over the orchestrator, the same tokens as the MCP endpoint.

Who may do what: person and operator tokens view, only a person acts (approve, reject,
re-queue, cancel: the same orchestrator calls as the person tools; pause and resume the
autopilot, as the CLI does; each recorded as `person:NAME`); an agent token gets 403 on
every route. A browser signs in by pasting a token (POST /dashboard/login sets an HttpOnly,
SameSite=Strict cookie, Secure when people reach the server over https); anything else sends
`Authorization: Bearer`. Every POST (sign-in, sign-out, actions) must come from this server's
own origin exactly (host_guard.HostGuard, host_guard.foreign_origin); actions also need the
header `X-WVO-Action: 1`, which a form cannot send. With `--no-auth` (loopback) anyone may
view and nobody acts.
"""

import json
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from html import escape
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

import anyio.to_thread
from mcp.server.auth.provider import TokenVerifier
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wvo_mcp import backups, timeutil
from wvo_mcp.edge import access
from wvo_mcp.edge.dashboard import detail, render, views
from wvo_mcp.edge.dashboard.live import Hub
from wvo_mcp.errors import NotFound, WvoError
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules import identity
from wvo_mcp.rules.transitions import Status
from wvo_mcp.services.board import Filters

PATH = "/dashboard"
COOKIE = "wvo_dashboard"
PAGE_SIZE = 50
KEEPALIVE_SECONDS = 15.0
VIEWERS = ("person", "operator")
STATIC = {"app.js": "text/javascript", "app.css": "text/css"}
REJECT_TO = ("cancelled", "blocked", "pending", "in_progress")
EVENTS = 200  # a task's newest events its detail shows
RUNS = 50  # and its newest sandbox runs and verifications
CHART_HOURS = 12  # the health view's completions per hour
TASK_ACTIONS = ("approve", "reject", "requeue", "cancel", "tell", "pause", "resume", "answer")
NOTED = ("reject", "tell", "answer")  # actions whose note is what they say: required
PILOT_ACTIONS = ("pause", "resume")
NOTE_CHARS = 4000
# On every dashboard answer. The page loads its one script and stylesheet from here; it has
# no inline script, handler or style, so nothing an agent writes into a task can run. Nothing
# is kept by a browser's or a proxy's cache: the answers carry task data, and the sign-in's
# carries the cookie.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no-referrer would make POSTs carry `Origin: null`
}

BODY_BYTES = 64 * 1024  # an action's or a sign-in's body; a larger one is refused (413)
# What each action's JSON body may hold; another key is refused, never ignored.
FIELDS = {
    "approve": ("note",),
    "reject": ("note", "to"),
    "requeue": ("note",),
    "cancel": ("note",),
    "tell": ("note",),  # the message
    "answer": ("note",),  # the answer
    "task_pause": ("note",),  # a task's pause, with why
    "task_resume": (),
    "pause": ("run",),  # an autopilot run's (api/autopilot)
    "resume": ("run",),
    "quarantine_add": ("test", "note"),  # the landing gate's (api/quarantine), with why
    "quarantine_remove": ("test",),
}


class SecurityHeaders:
    """SECURITY_HEADERS on every answer under /dashboard: pages, fragments, JSON, the stream,
    static files, sign-in and sign-out, refusals, and paths no route matches (in place of any
    the handler set)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
        self.names = {name for name, _ in self.headers}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(PATH):
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [h for h in message.get("headers", []) if h[0].lower() not in self.names]
                message = {**message, "headers": [*kept, *self.headers]}
            await send(message)

        await self.app(scope, receive, sending)


class Refused(Exception):
    """A request the dashboard refuses: its status and what was wrong."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status

    def answer(self) -> JSONResponse:
        return JSONResponse({"error": str(self)}, status_code=self.status)


async def _read(request: Request) -> bytes:
    """The body, refused (413) past BODY_BYTES without reading the rest."""
    too_big = Refused(
        413, f"the body is over {BODY_BYTES} bytes (a note: {NOTE_CHARS} characters at most); "
        "nothing was done",
    )  # fmt: skip
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > BODY_BYTES:
        raise too_big
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > BODY_BYTES:
            raise too_big
    return body


def _note(body: dict[str, Any], required: bool) -> str | None:
    note = body.get("note") or None
    if note is None and required:
        raise Refused(400, "a rejection needs a note")
    if note is not None and len(note) > NOTE_CHARS:
        raise Refused(400, f"the note is over {NOTE_CHARS} characters; shorten it")
    return note


async def _fields(request: Request, action: str) -> dict[str, Any]:
    """An action's JSON object body, holding only the fields the action takes."""
    raw = await _read(request)
    accepted = FIELDS[action]
    try:
        body = json.loads(raw) if raw.strip() else None
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise Refused(
            400, f"send a JSON object: {{}} or with {' and '.join(accepted)}; nothing was done"
        )
    unknown = sorted(set(body) - set(accepted))
    if unknown:
        raise Refused(
            400,
            f"{action} takes {', '.join(accepted) or 'no field'}, not {', '.join(unknown)}; "
            "nothing was done",
        )
    for name in ("note", "run", "test"):  # `to` is checked against its choices
        if body.get(name) is not None and not isinstance(body[name], str):
            raise Refused(400, f"{name} must be a string; nothing was done")
    return body


def _static(name: str) -> str:
    return resources.files("wvo_mcp.edge.dashboard").joinpath("static", name).read_text("utf-8")


class Dashboard:
    def __init__(
        self,
        orchestrator: Callable[[], Orchestrator | None],
        verifier: TokenVerifier | None,
        secure: bool = False,
    ) -> None:
        self.orchestrator = orchestrator
        self.verifier = verifier  # None: --no-auth
        self.secure = secure  # people reach the server over https: the cookie says Secure
        self.hub = Hub(orchestrator)

    def routes(self) -> list[Route]:
        found = [
            ("/", self.home, "GET"),
            (PATH, self.page, "GET"),
            (f"{PATH}/login", self.login, "POST"),
            (f"{PATH}/logout", self.logout, "POST"),
            (f"{PATH}/static/{{name}}", self.static, "GET"),
            (f"{PATH}/tasks/{{task_id}}", self.task_page, "GET"),
            (f"{PATH}/api/column", self.column, "GET"),
            (f"{PATH}/api/cards", self.cards, "GET"),
            (f"{PATH}/api/tasks/{{task_id}}", self.task, "GET"),
            (f"{PATH}/api/tasks/{{task_id}}/checkpoints/{{seq:int}}/diff", self.diff, "GET"),
            (f"{PATH}/api/tasks/{{task_id}}/{{action}}", self.act, "POST"),
            (f"{PATH}/api/views/{{name}}", self.view, "GET"),
            (f"{PATH}/api/autopilot/{{action}}", self.pilot, "POST"),
            (f"{PATH}/api/quarantine/{{action}}", self.quarantine, "POST"),
            (f"{PATH}/events", self.events, "GET"),
        ]
        return [Route(path, handler, methods=[method]) for path, handler, method in found]

    def _db(self) -> Orchestrator:
        found = self.orchestrator()
        if found is None:
            raise RuntimeError("the server's database is not open")
        return found

    async def _caller(self, request: Request) -> access.Caller | Response:
        """The viewer, or the answer refusing the request (401 without a valid token, 403 for
        an agent's). Host and Origin were checked for every route, a POST's Origin exactly
        (host_guard.HostGuard)."""
        if self.verifier is None:
            return access.Caller(role="anonymous", name="anonymous")
        header = request.headers.get("authorization", "")
        secret = header[7:].strip() if header.lower().startswith("bearer ") else None
        secret = secret or request.cookies.get(COOKIE)
        found = None if not secret else await self.verifier.verify_token(secret)
        if found is None:
            if request.url.path == PATH or request.url.path.startswith(f"{PATH}/tasks/"):
                return HTMLResponse(render.LOGIN, status_code=401)
            return JSONResponse(
                {"error": "a person or operator token is needed"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        claims = found.claims or {}
        caller = access.Caller(str(claims.get("wvo_role", "")), found.subject or found.client_id)
        if caller.role not in VIEWERS:
            return JSONResponse(
                {"error": f"a {caller.role or 'unknown'} token may not use the dashboard; "
                          "a person or operator token may"},
                status_code=403,
            )  # fmt: skip
        return caller

    @staticmethod
    def _filters(request: Request) -> Filters:
        q = request.query_params

        def given(name: str) -> str | None:
            value = q.get(name, "").strip()
            return value[:200] or None

        return Filters(given("epic"), given("tag"), given("agent"), given("q"))

    async def home(self, request: Request) -> Response:
        """The server's root, where a person types the host and port alone."""
        return RedirectResponse(PATH, status_code=307)

    async def page(self, request: Request) -> Response:
        caller = await self._caller(request)
        if isinstance(caller, Response):
            return caller
        filters = self._filters(request)
        found = await self._db().board_view(filters, PAGE_SIZE)
        html = render.page(
            _static("index.html"), found, filters, caller.name, caller.role == "person"
        )
        return HTMLResponse(html)

    async def login(self, request: Request) -> Response:
        """Keep a valid token in the cookie. Its Origin was checked exactly first: a page on
        another port of this host could otherwise sign a browser in as someone else."""
        try:
            form = parse_qs((await _read(request)).decode("utf-8", "replace"))
        except Refused as exc:
            return exc.answer()
        secret = (form.get("token") or [""])[0].strip()
        if self.verifier is None:
            return RedirectResponse(PATH, status_code=303)
        found = None if not secret else await self.verifier.verify_token(secret)
        if found is None:
            return HTMLResponse(render.LOGIN, status_code=401)
        answer = RedirectResponse(PATH, status_code=303)
        answer.set_cookie(
            COOKIE, secret, path=PATH, httponly=True, samesite="strict", secure=self.secure
        )
        return answer

    async def logout(self, request: Request) -> Response:
        answer = RedirectResponse(PATH, status_code=303)
        answer.delete_cookie(
            COOKIE, path=PATH, httponly=True, samesite="strict", secure=self.secure
        )
        return answer

    async def static(self, request: Request) -> Response:
        caller = await self._caller(request)
        if isinstance(caller, Response):
            return caller
        name = request.path_params["name"]
        if name not in STATIC:
            return Response(status_code=404)
        return Response(_static(name), media_type=STATIC[name])

    async def column(self, request: Request) -> Response:
        caller = await self._caller(request)
        if isinstance(caller, Response):
            return caller
        try:
            found = await self._db().board_column(
                request.query_params.get("status", ""),
                self._filters(request),
                request.query_params.get("after", ""),
                PAGE_SIZE,
            )
        except WvoError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(
            {"html": render.cards(found, caller.role == "person"), "next": found.next_after}
        )

    async def cards(self, request: Request) -> Response:
        caller = await self._caller(request)
        if isinstance(caller, Response):
            return caller
        ids = [i for i in request.query_params.get("ids", "").split(",") if i][:500]
        found = await self._db().board_cards(ids, self._filters(request))
        can_act = caller.role == "person"
        return JSONResponse(
            {"cards": [{"id": c.id, "status": c.status, "html": render.card(c, can_act)}
                       for c in found]}
        )  # fmt: skip

    async def view(self, request: Request) -> Response:
        """The agents, budgets, health or autopilot view as an HTML fragment, from the same
        orchestrator calls as the tools and the CLI."""
        caller = await self._caller(request)
        if isinstance(caller, Response):
            return caller
        db = self._db()
        name = request.path_params["name"]
        if name == "agents":
            html = views.agents(await db.agents_view(), db.settings.stale_task_minutes)
        elif name == "budgets":
            html = views.budgets(await db.provider_status()) + views.routes(await db.route_view())
        elif name == "health":
            html = views.health(
                await db.health_report(), await db.done_per_hour(CHART_HOURS), await self._backups()
            ) + views.scheduled(await db.schedules())
        elif name == "inbox":
            html = views.inbox(await db.inbox(), caller.role == "person")
        elif name == "autopilot":
            html = views.autopilot(
                await self._pilots(), caller.role == "person", await db.landing_view()
            ) + views.gate(await db.gate(), caller.role == "person")
        else:
            return JSONResponse({"error": f"no view {name!r}"}, status_code=404)
        return JSONResponse({"html": html})

    async def _backups(self) -> views.Backups | None:
        """The SQLite file's backups (the health monitor takes them); None on PostgreSQL."""
        settings = self._db().settings
        if settings.database_url is not None:
            return None
        found = await anyio.to_thread.run_sync(backups.listing, settings.backups_dir)
        latest = timeutil.to_text(found[-1][1]) if found else None
        return views.Backups(len(found), latest)

    async def _pilots(self) -> list[dict[str, Any]]:
        """The autopilot runs of the last hour."""
        db = self._db()
        return await db.autopilot_runs(timeutil.to_text(db.clock() - timedelta(hours=1)))

    async def _task(self, task_id: str, can_act: bool) -> str:
        """A task's detail as HTML (NotFound when there is no such task), with the live log
        of the autopilot worker running it, if one is, and a person's actions."""
        db = self._db()
        view = await db.task_view(task_id, EVENTS, RUNS)
        log = await self._live_log(task_id) if view.task.status == Status.IN_PROGRESS else None
        return detail.task(view, EVENTS, git=db.git is not None, log=log, can_act=can_act)

    async def _live_log(self, task_id: str) -> detail.LiveLog | None:
        """The latest output of the autopilot worker running the task, as its autopilot
        reported it on its last round (reports are JSON the autopilot wrote: read warily)."""
        for run in await self._pilots():
            workers = run["report"].get("workers") if run["state"] != "ended" else None
            for worker in workers if isinstance(workers, list) else []:
                if isinstance(worker, dict) and worker.get("task") == task_id:
                    tail = worker.get("tail")
                    lines = [str(line) for line in tail] if isinstance(tail, list) else []
                    return detail.LiveLog(str(worker.get("agent", "")), run["id"], lines)
        return None

    async def task_page(self, request: Request) -> Response:
        caller = await self._caller(request)
        if isinstance(caller, Response):
            return caller
        task_id = request.path_params["task_id"]
        try:
            html = await self._task(task_id, caller.role == "person")
        except NotFound as exc:
            return HTMLResponse(f"<!doctype html><p>{escape(str(exc))}</p>", status_code=404)
        return HTMLResponse(detail.task_page(html, task_id, caller.name))

    async def task(self, request: Request) -> Response:
        caller = await self._caller(request)
        if isinstance(caller, Response):
            return caller
        try:
            html = await self._task(request.path_params["task_id"], caller.role == "person")
        except NotFound as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        return JSONResponse({"html": html})

    async def diff(self, request: Request) -> Response:
        """A checkpoint's git snapshot against the HEAD it was taken on, as HTML."""
        caller = await self._caller(request)
        if isinstance(caller, Response):
            return caller
        task_id, seq = request.path_params["task_id"], request.path_params["seq"]
        try:
            patch, cut = await self._db().checkpoint_diff(task_id, seq)
        except NotFound as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        except WvoError as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        return JSONResponse({"html": detail.diff(patch, cut)})

    async def _actor(self, request: Request) -> access.Caller | Response:
        """The person acting, or the refusal: as _caller, then 403 unless a person sent the
        header that says it is an action (a cross-site form cannot set it)."""
        caller = await self._caller(request)
        if isinstance(caller, Response):
            return caller
        if caller.role != "person":
            return JSONResponse({"error": "only a person token may act"}, status_code=403)
        if request.headers.get("x-wvo-action") != "1":
            return JSONResponse({"error": "actions need the header X-WVO-Action: 1"}, 403)
        return caller

    async def act(self, request: Request) -> Response:
        caller = await self._actor(request)
        if isinstance(caller, Response):
            return caller
        task_id, action = request.path_params["task_id"], request.path_params["action"]
        if action not in TASK_ACTIONS:
            return JSONResponse({"error": f"no action {action!r}"}, 404)
        try:
            body = await _fields(request, f"task_{action}" if action in PILOT_ACTIONS else action)
            note = _note(body, required=action in NOTED)
            to = body.get("to", "cancelled")  # given, it must be one of them: no fallback
            if to not in REJECT_TO:
                raise Refused(400, f"to: one of {', '.join(REJECT_TO)}")
        except Refused as exc:
            return exc.answer()
        by = identity.person(caller.name)
        db = self._db()
        try:
            if action == "approve":
                done = await db.approve(task_id, by, note)
            elif action == "reject":
                assert note is not None
                done = await db.reject(task_id, by, note, Status(to))
            elif action == "requeue":
                done = await db.requeue(task_id, by, note)
            elif action in ("tell", "answer"):
                assert note is not None
                said = (
                    await db.tell("task", task_id, note, by)
                    if action == "tell"
                    else await db.answer(task_id, note, by)
                )
                return JSONResponse({"message": said.message})
            elif action in ("pause", "resume"):
                moved = (
                    await db.pause("task", task_id, by, note)
                    if action == "pause"
                    else await db.resume("task", task_id, by)
                )
                return JSONResponse({"message": moved.message})
            else:
                done = await db.update_status(
                    task_id, Status.CANCELLED, by,
                    reason=note or "cancelled by a person", by_person=True,
                )  # fmt: skip
        except WvoError as exc:
            return JSONResponse({"error": f"{type(exc).__name__}: {exc}"}, 409)
        return JSONResponse(done.model_dump(mode="json", exclude_none=True))

    async def pilot(self, request: Request) -> Response:
        """Ask running autopilots (all, or the body's `run`) to pause or resume, as the CLI
        does, recorded as `person:NAME`."""
        caller = await self._actor(request)
        if isinstance(caller, Response):
            return caller
        action = request.path_params["action"]
        if action not in PILOT_ACTIONS:
            return JSONResponse({"error": f"no autopilot action {action!r}; pause or resume"}, 404)
        try:
            body = await _fields(request, action)
        except Refused as exc:
            return exc.answer()
        run_id = body.get("run") or None
        heard = await self._db().autopilot_want(action, identity.person(caller.name), run_id)
        if not heard:
            return JSONResponse(
                {"error": "no running autopilot heard it (ended, or no such run); the "
                          "Autopilot tab lists the runs"},
                status_code=409,
            )  # fmt: skip
        return JSONResponse({"heard": heard, "action": action})

    async def quarantine(self, request: Request) -> Response:
        """Add a test to the landing gate's quarantine (with why) or remove one, as
        `wvo-mcp quarantine` does, recorded as `person:NAME`."""
        caller = await self._actor(request)
        if isinstance(caller, Response):
            return caller
        action = request.path_params["action"]
        if action not in ("add", "remove"):
            return JSONResponse({"error": f"no quarantine action {action!r}; add or remove"}, 404)
        try:
            body = await _fields(request, f"quarantine_{action}")
            note = _note(body, required=False)
            if not body.get("test"):
                raise Refused(400, "name the test, as its JUnit report names it")
            if action == "add" and note is None:
                raise Refused(400, "a quarantine needs a note: why the test is quarantined")
        except Refused as exc:
            return exc.answer()
        db = self._db()
        try:
            if action == "add":
                assert note is not None
                entry = await db.quarantine(body["test"], note, identity.person(caller.name), 14)
                return JSONResponse({"message": f"quarantined {entry.test} until "
                                                f"{entry.expires_at}"})  # fmt: skip
            await db.unquarantine(body["test"])
        except WvoError as exc:
            return JSONResponse({"error": f"{type(exc).__name__}: {exc}"}, 409)
        return JSONResponse({"message": f"{body['test']} is no longer quarantined"})

    async def events(self, request: Request) -> Response:
        """Server-sent events: `tasks` (these ids changed; the cards of those that pass the
        query's filters, rendered; the counts) with `id:` the last event seen, so a
        reconnecting EventSource resumes from Last-Event-ID; `views` (these views changed:
        agents, budgets, health, autopilot)."""
        caller = await self._caller(request)
        if isinstance(caller, Response):
            return caller
        given = request.headers.get("last-event-id") or request.query_params.get("after")
        after = int(given) if given and given.isdigit() else None
        filters = self._filters(request)
        return StreamingResponse(
            self._stream(after, filters, caller.role == "person"),
            media_type="text/event-stream",
            headers={"X-Accel-Buffering": "no"},
        )

    async def _stream(
        self, after: int | None, filters: Filters, can_act: bool
    ) -> AsyncIterator[str]:
        async with self.hub.subscribe(after, filters) as subscriber:
            # A fresh viewer starts from now; a resuming one keeps its Last-Event-ID until
            # what it missed has been sent.
            start = f"id: {subscriber.cursor}\n" if after is None else ""
            yield f"retry: 1000\n{start}event: hello\ndata: {{}}\n\n"
            while True:
                change = await subscriber.next(KEEPALIVE_SECONDS)
                if change is None:
                    yield ": keepalive\n\n"
                    continue
                if change.views:
                    yield f"event: views\ndata: {json.dumps({'views': change.views})}\n\n"
                if change.reset or change.task_ids:
                    kind = "reset" if change.reset else "tasks"
                    cards = [
                        {"id": c.id, "status": c.status, "html": render.card(c, can_act)}
                        for c in change.cards
                    ]
                    data = json.dumps(
                        {"ids": change.task_ids, "cards": cards, "counts": change.counts}
                    )
                    yield f"id: {change.cursor}\nevent: {kind}\ndata: {data}\n\n"

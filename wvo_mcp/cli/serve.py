"""Serving: `serve` (stdio or HTTP), `stop`, `dashboard`, and the HTTP bearer `tokens`.

Serving: `serve` (stdio, or streamable HTTP with --http), `dashboard`, and `tokens`, the
bearer tokens `serve --http` accepts."""

import argparse
import dataclasses
import math
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from wvo_mcp import backups
from wvo_mcp.cli import front, handle
from wvo_mcp.cli.command import Command, app_arguments, opened, person, trust_arguments
from wvo_mcp.cli.output import print_json, say, table, warn
from wvo_mcp.config import Settings, repositories
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules import gitlab_webhooks, webhooks

if TYPE_CHECKING:
    from wvo_mcp.edge import http_server


def cmd_serve(settings: Settings, args: argparse.Namespace) -> None:
    """Serve MCP over stdio (what an agent's client starts), or over streamable HTTP with
    --http (many agents and people, bearer tokens: docs/http.md). A combination of --http
    flags that cannot be served safely is refused by edge/http_server.py:Options.check."""
    from wvo_mcp.edge import stdio
    from wvo_mcp.edge.server import build_server
    from wvo_mcp.sandbox import protect

    options = _http_options(args)
    if options is not None:
        options.check()  # bad flags are refused before anything opens
        settings = _admission_flags(settings, args)
        if getattr(args, "repo", None):  # `dashboard` serves no webhook
            named = repositories(",".join(args.repo), "--repo")
            settings = dataclasses.replace(settings, webhook_repos=named)
    # Held for the process's whole life, so `restore` knows servers are running.
    with _servers_lock(settings):
        # Open (and migrate) the database before speaking MCP: a refused database then ends
        # the process with a message, instead of leaving the client waiting for `initialize`.
        anyio.run(opened, settings, _just_open)
        # Likewise a layout whose trusted files sandboxed commands could reach.
        protect.layout(settings, settings.workspace_root)
        if options is not None:
            from wvo_mcp.edge import http_server

            if settings.gitlab_webhook_secret and not gitlab_webhooks.named(
                    settings.webhook_repos):  # fmt: skip
                warn("wvo-mcp: the GitLab webhook serves no project yet: name one with "
                     "--repo gitlab:GROUP/PROJECT (or in WVO_WEBHOOK_REPOS)")  # fmt: skip
            if settings.webhook_secret and not webhooks.named(settings.webhook_repos):
                synced = anyio.run(opened, settings, lambda o: o.synced_repositories())
                if not synced:  # every delivery would be answered 202 and do nothing
                    warn("wvo-mcp: the webhook serves no repository yet: name one with "
                         "--repo OWNER/REPO (or WVO_WEBHOOK_REPOS), or run `wvo-mcp import "
                         "github:OWNER/REPO` once")  # fmt: skip

            def ready() -> None:  # the port listens: the URL printed answers
                if options.dashboard:
                    say(f"dashboard: {options.dashboard_url}")

            http_server.serve(settings, options, ready)
            return
        begun = front.handed()  # what the front answered while the server imported
        taken = stdio.Taken(begun.replay, frozenset(begun.answered), begun.pending)
        anyio.run(stdio.serve, build_server(settings), taken, handle.leave, handle.tell)


def cmd_stop(settings: Settings, args: argparse.Namespace) -> None:
    """Stop the state folder's warm process, which forks a server for each stdio client
    (warm start, on by default on Linux; WVO_WARM_START=0 turns it off). The servers it
    started go on until their clients stop them; the next client starts cold and starts a
    new warm process."""
    from wvo_mcp.cli import warm_relay

    try:
        pid = warm_relay.stop_warm(settings.state_root)
    except TimeoutError as exc:
        raise SystemExit(f"wvo-mcp: {exc}") from None
    if pid is None:
        say(f"no warm process serves {settings.state_root}")
    else:
        say(f"stopped the warm process {pid} of {settings.state_root}")


def cmd_dashboard(settings: Settings, args: argparse.Namespace) -> None:
    """Serve the live dashboard (and MCP) over HTTP: `serve --http --dashboard`; prints the
    dashboard's URL (docs/dashboard.md)."""
    args.http = args.dashboard = True
    cmd_serve(settings, args)


def _servers_lock(settings: Settings) -> AbstractContextManager[None]:
    """SQLite's restore waits for servers to stop; PostgreSQL's own tools restore."""
    if settings.database_url is not None:
        return nullcontext()
    return backups.servers_lock(settings.db_path)


async def _just_open(_: Orchestrator) -> None:
    return None


HTTP_FLAGS = {
    "host": "--host",
    "port": "--port",
    "certfile": "--certfile",
    "keyfile": "--keyfile",
    "allowed_host": "--allowed-host",
    "public_url": "--public-url",
    "no_auth": "--no-auth",
    "jwt_issuer": "--jwt-issuer",
    "jwks_url": "--jwks-url",
    "jwt_audience": "--jwt-audience",
    "dashboard": "--dashboard",
    "max_inflight": "--max-inflight",
    "rate_per_token": "--rate-per-token",
    "burst_per_token": "--burst-per-token",
}


def _http_options(args: argparse.Namespace) -> "http_server.Options | None":
    """`serve --http`'s options; None for stdio (HTTP flags without --http are refused)."""
    from wvo_mcp.edge import access, http_server

    if not getattr(args, "http", False):
        given = [flag for name, flag in HTTP_FLAGS.items() if getattr(args, name, None)]
        if given:
            raise ValidationFailed(
                f"{', '.join(given)}: only for `wvo-mcp serve --http`; add --http, or drop "
                "them to serve over stdio"
            )
        return None
    jwt_flags = (args.jwt_issuer, args.jwks_url)
    if any(jwt_flags) and not all(jwt_flags):
        raise ValidationFailed(
            "an external issuer needs both --jwt-issuer URL and --jwks-url URL "
            "(and optionally --jwt-audience; default: the server's resource URL)"
        )
    options = http_server.Options(
        host=args.host if args.host is not None else "127.0.0.1",
        port=args.port if args.port is not None else http_server.DEFAULT_PORT,
        certfile=Path(args.certfile) if args.certfile else None,
        keyfile=Path(args.keyfile) if args.keyfile else None,
        allowed_hosts=tuple(args.allowed_host or ()),
        public_url=args.public_url,
        no_auth=args.no_auth,
        dashboard=bool(getattr(args, "dashboard", False)),
    )
    if args.jwt_issuer:
        options = dataclasses.replace(
            options,
            jwt=access.Jwt(
                issuer=args.jwt_issuer,
                jwks_url=args.jwks_url,
                audience=args.jwt_audience or options.resource_url,
            ),
        )
    return options


def _admission_flags(settings: Settings, args: argparse.Namespace) -> Settings:
    """The admission limits the flags give, over the environment's (docs/http.md)."""
    given = {
        "http_max_inflight": ("--max-inflight", args.max_inflight, 0),
        "http_rate_per_token": ("--rate-per-token", args.rate_per_token, 0),
        "http_burst_per_token": ("--burst-per-token", args.burst_per_token, 1),
    }
    changes: dict[str, Any] = {}
    for field, (flag, value, least) in given.items():
        if value is None:
            continue
        if not (value >= least and math.isfinite(value)):
            raise ValidationFailed(f"{flag} {value:g} must be a number of at least {least}")
        changes[field] = value
    return dataclasses.replace(settings, **changes)


def cmd_tokens(settings: Settings, args: argparse.Namespace) -> None:
    """Bearer tokens for `serve --http`: `tokens add --role agent|person|operator --name
    NAME` (prints the secret once), `tokens list`, `tokens revoke ID`."""
    if args.action == "add":
        if not args.role or not args.name:
            raise ValidationFailed(
                "tokens add needs --role (agent, person or operator) and --name (the agent id, "
                "e.g. claude-1, or the person's name)"
            )
        issued = anyio.run(
            lambda: opened(
                settings,
                lambda o: o.token_add(args.role, args.name, person(args), provider=args.provider),
            )
        )
        token = issued.token
        say(issued.secret)
        on = f" on {token.provider}" if token.provider else ""
        warn(
            f"token {token.id}: {token.role} {token.name}{on}. The secret above is shown once; "
            "clients send it as the header `Authorization: Bearer <secret>` (docs/http.md); "
            f"`wvo-mcp tokens revoke {token.id}` ends it"
        )
        return
    if args.action == "revoke":
        if not args.id:
            raise ValidationFailed("tokens revoke needs the token's ID (`wvo-mcp tokens list`)")
        anyio.run(lambda: opened(settings, lambda o: o.token_revoke(args.id)))
        say(f"revoked {args.id}: servers refuse it from the next request")
        return
    found = anyio.run(lambda: opened(settings, lambda o: o.token_list()))
    if args.json:
        print_json([t.shown() for t in found])
        return
    table(
        ["id", "role", "name", "provider", "created", "by", "last used", "revoked"],
        [
            [t.id, t.role, t.name, t.provider or "-", t.created_at, t.created_by,
             t.last_used_at or "-", t.revoked_at or "-"]
            for t in found
        ],
    )  # fmt: skip


def _http_arguments(cmd: argparse.ArgumentParser, flag: bool = True) -> None:
    """The flags of `serve --http` (said as such when `flag`), shared by `dashboard`."""

    def said(text: str) -> str:
        return f"With --http: {text}" if flag else text[0].upper() + text[1:]

    cmd.add_argument("--host", help=said("the address to bind (default 127.0.0.1)."))
    cmd.add_argument("--port", type=int, help=said("the port (default 8765)."))
    cmd.add_argument("--certfile", help=said("the TLS certificate (PEM)."))
    cmd.add_argument("--keyfile", help=said("the TLS private key (PEM)."))
    cmd.add_argument(
        "--allowed-host",
        action="append",
        metavar="HOST[:PORT]",
        help=said("a Host header to accept besides the bound address (repeatable)."),
    )
    cmd.add_argument(
        "--public-url", help=said("the URL clients use, e.g. https://mcp.example.com/mcp.")
    )
    cmd.add_argument(
        "--no-auth", action="store_true", help=said("no bearer tokens (on loopback only).")
    )
    cmd.add_argument(
        "--jwt-issuer", help=said("accept the JWTs of this OAuth issuer instead of tokens.")
    )
    cmd.add_argument("--jwks-url", help=said("the issuer's JWKS URL (its signing keys)."))
    cmd.add_argument("--jwt-audience", help=said("the JWTs' audience (default: the resource URL)."))
    cmd.add_argument(
        "--max-inflight",
        type=int,
        metavar="N",
        help=said(
            "requests at once in this process, beyond which 503 (default "
            "$WVO_HTTP_MAX_INFLIGHT or 256; 0: no cap)."
        ),
    )
    cmd.add_argument(
        "--rate-per-token",
        type=float,
        metavar="R",
        help=said(
            "requests a second per token on average, beyond which 429 (default "
            "$WVO_HTTP_RATE_PER_TOKEN or 50; 0: no limit)."
        ),
    )
    cmd.add_argument(
        "--burst-per-token",
        type=int,
        metavar="N",
        help=said("requests per token at once (default $WVO_HTTP_BURST_PER_TOKEN or 500)."),
    )


def _serve_arguments(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--http", action="store_true", help="Serve streamable HTTP instead of stdio."
    )
    serve.add_argument(
        "--dashboard", action="store_true", help="With --http: also serve the live dashboard."
    )
    _http_arguments(serve)
    serve.add_argument(
        "--repo",
        action="append",
        metavar="OWNER/REPO",
        help="With --http and WVO_WEBHOOK_SECRET: a repository the webhook serves (repeatable; "
        "default WVO_WEBHOOK_REPOS, else those `import github:` synced here); with "
        "WVO_GITLAB_WEBHOOK_SECRET, gitlab:GROUP/PROJECT a project GitLab's webhook serves. "
        "Another's delivery is answered 202 and recorded, and does nothing.",
    )
    trust_arguments(serve)
    app_arguments(serve)


def _dashboard_arguments(dashboard: argparse.ArgumentParser) -> None:
    _http_arguments(dashboard, flag=False)


def _tokens_arguments(tokens: argparse.ArgumentParser) -> None:
    tokens.add_argument(
        "action", choices=["add", "list", "revoke"], help="Add a token, list them, or revoke one."
    )
    tokens.add_argument("id", nargs="?", help="For revoke: the token's id.")
    tokens.add_argument(
        "--role", choices=["agent", "person", "operator"], help="For add: what it may do."
    )
    tokens.add_argument("--name", help="For add: the agent id, or the person's name.")
    tokens.add_argument(
        "--provider",
        help="For add, an agent token: the provider it runs on, which its agent can never "
        "change (without it: the first one its agent registers).",
    )
    tokens.add_argument("--by", help="Who adds it (default: your user name).")
    tokens.add_argument("--json", action="store_true", help="Machine-readable output.")


SERVE = Command("serve", cmd_serve, _serve_arguments)
STOP = Command("stop", cmd_stop)
DASHBOARD = Command("dashboard", cmd_dashboard, _dashboard_arguments)
TOKENS = Command("tokens", cmd_tokens, _tokens_arguments)

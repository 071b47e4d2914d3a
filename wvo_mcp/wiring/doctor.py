"""`wvo-mcp doctor`: checks a repository `init` wired, each failure saying what to do.

`wvo-mcp doctor`: check a repository `wvo-mcp init` wired, each check saying what to do
when it fails. Starts the server exactly as each client's configuration says, runs the
sandbox, and asks each CLI whether it is signed in (which spends no tokens)."""

import dataclasses
import json
import os
import socket
import tomllib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from wvo_mcp import providers, sandbox, timeutil
from wvo_mcp.autopilot import isolation, worker_config
from wvo_mcp.autopilot.landing import gate, lander
from wvo_mcp.autopilot.landing.target import local_ref
from wvo_mcp.config import Settings
from wvo_mcp.errors import ValidationFailed, WvoError
from wvo_mcp.forge import Forge, Requirements, credentials, github_app, select
from wvo_mcp.forge.select import Located
from wvo_mcp.git import Git, locate, trees
from wvo_mcp.git.remote import PROBE_REFS, Remote, parse_onto, remotes
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules import pull_news as pull_news_rules
from wvo_mcp.rules import pulls
from wvo_mcp.rules.trust import RANKS
from wvo_mcp.sandbox import run_limits
from wvo_mcp.sandbox.request import WorkerLimits
from wvo_mcp.services import pull_news
from wvo_mcp.wiring import clis, edits, place
from wvo_mcp.wiring.init import ignored

SERVER_START_S = 60
# Landing through the forge: GitHub's word and GitLab's for the same way.
FORGE_VIAS = ("pull-request", "merge-request")
FORGES = {"github": "GitHub", "gitlab": "GitLab"}
# GitLab's roles for the trust rule's (GitLab's Reporter reads as triage: forge/gitlab.py).
GITLAB_ROLES = {"admin": "Owner", "maintain": "Maintainer", "write": "Developer",
                "triage": "Reporter", "read": "Guest"}  # fmt: skip


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


async def run(
    settings: Settings,
    cwd: Path,
    check: str | None = None,
    onto: str | None = None,
    via: str = "push",
    forge_api: str | None = None,
) -> list[Check]:
    repo = locate(cwd)
    if repo is None:
        return [Check("repository", False, f"{cwd} is not in a git repository")]
    top = repo.top
    recorded = place.recorded(top)
    state = recorded or settings.state_root
    checks = [
        Check("state folder", True, f"{state}")
        if recorded is not None
        else Check("state folder", False, f"none recorded for {top}: run `wvo-mcp init`")
    ]
    if top in state.parents:
        checks.append(
            Check("ignored by git", True, f"{state.relative_to(top)}/ is ignored")
            if ignored(top, state)
            else Check(
                "ignored by git",
                False,
                f"{state.relative_to(top)}/ is not ignored: add it to .gitignore "
                "(`wvo-mcp init` does)",
            )
        )
    checks.append(await _database(settings, state))
    # The rest wait on processes they start (servers, the sandbox, Node CLIs): side by side,
    # reported in this order. One after the other they took about 3 s.
    steps: list[Awaitable[list[Check]]] = [
        *(_one(_server(name, entry, top, state)) for name, entry in _client_entries(top)),
        _one(anyio.to_thread.run_sync(_sandbox, settings)),
        _one(anyio.to_thread.run_sync(_worker_limits)),
        _project(dataclasses.replace(settings, state_root=state), check, onto),
        _clis(state, top),
    ]
    if onto is not None:
        steps.append(_one(anyio.to_thread.run_sync(_remote, settings, Git(repo, top), onto)))
    if onto is not None and via in FORGE_VIAS:
        git = Git(repo, top)
        steps.append(anyio.to_thread.run_sync(_forge, settings, git, onto, forge_api, via))
        state_settings = dataclasses.replace(settings, state_root=state)
        steps.append(_one(_deliveries(state_settings, git, onto, forge_api)))
    found: list[list[Check]] = [[] for _ in steps]

    async def one(slot: int, step: Awaitable[list[Check]]) -> None:
        found[slot] = await step

    async with anyio.create_task_group() as group:
        for slot, step in enumerate(steps):
            group.start_soon(one, slot, step)
    return checks + [c for step_checks in found for c in step_checks]


async def _one(check: Awaitable[Check]) -> list[Check]:
    return [await check]


async def _clis(state: Path, top: Path) -> list[Check]:
    """Each CLI's version and sign-in, the CLIs asked side by side, and how it is wired: as
    a client of the repository's wvo server, as a provider the autopilot launches."""
    found = await anyio.to_thread.run_sync(clis.find)
    checks: list[Check | None] = [None] * len(found)
    wired = _wiring(state, top)

    async def one(slot: int, cli: clis.Cli) -> None:
        checked = await anyio.to_thread.run_sync(_cli, cli)
        checks[slot] = dataclasses.replace(checked, detail=f"{checked.detail}; {wired(cli.kind)}")

    async with anyio.create_task_group() as group:
        for slot, cli in enumerate(found):
            group.start_soon(one, slot, cli)
    return [c for c in checks if c is not None]


def _missing(settings: Settings, state: Path) -> str | None:
    """Why there is no database to open: opening would make one, and doctor only looks (a
    state folder nobody asked for stays unmade)."""
    if settings.database_url is None and not (state / "orchestrator.db").is_file():
        return f"none in {state}: `wvo-mcp init` makes it"
    return None


async def _database(settings: Settings, state: Path) -> Check:
    if (missing := _missing(settings, state)) is not None:
        return Check("database", False, missing)
    try:
        orchestrator = await Orchestrator.open(dataclasses.replace(settings, state_root=state))
    except WvoError as exc:
        return Check("database", False, str(exc))
    try:
        counts = (await orchestrator.status_report("cli", top=0)).counts
    finally:
        await orchestrator.close()
    shown = ", ".join(f"{n} {s}" for s, n in counts.by_status.items() if n) or "no tasks yet"
    return Check("database", True, f"{orchestrator.settings.database_label}: {shown}")


def _client_entries(top: Path) -> list[tuple[str, dict[str, Any] | None]]:
    """Our server's entry in each client's project configuration (None: it has none)."""
    found: list[tuple[str, dict[str, Any] | None]] = []
    claude = top / ".mcp.json"
    try:
        servers = json.loads(claude.read_text()).get("mcpServers", {})
        found.append((".mcp.json", servers.get(edits.SERVER)))
    except (OSError, ValueError, AttributeError):
        found.append((".mcp.json", None))
    codex = top / ".codex" / "config.toml"
    try:
        servers = tomllib.loads(codex.read_text()).get("mcp_servers", {})
        found.append((".codex/config.toml", servers.get(edits.SERVER)))
    except (OSError, ValueError, AttributeError):
        found.append((".codex/config.toml", None))
    gemini = top / ".gemini" / "settings.json"
    if gemini.exists():  # written only where Gemini CLI was found
        try:
            servers = json.loads(gemini.read_text()).get("mcpServers", {})
            found.append((".gemini/settings.json", servers.get(edits.SERVER)))
        except (OSError, ValueError, AttributeError):
            found.append((".gemini/settings.json", None))
    opencode = top / "opencode.json"
    if opencode.exists():  # written only where OpenCode was found; its own shape
        try:
            local = json.loads(opencode.read_text()).get("mcp", {}).get(edits.SERVER)
            argv, env = local["command"], local.get("environment")
            found.append(("opencode.json", {"command": argv[0], "args": argv[1:], "env": env}))
        except (OSError, ValueError, AttributeError, LookupError, TypeError):
            found.append(("opencode.json", None))
    return found


async def _server(name: str, entry: dict[str, Any] | None, top: Path, state: Path) -> Check:
    """Start the server as the client would, and list its tools over MCP."""
    label = f"server from {name}"
    if not isinstance(entry, dict) or not isinstance(entry.get("command"), str):
        return Check(label, False, f'{name} has no "wvo" server: run `wvo-mcp init`')
    env = {k: str(v) for k, v in (entry.get("env") or {}).items()}
    if env.get("WVO_STATE_ROOT", str(state)) != str(state):
        return Check(
            label,
            False,
            f"WVO_STATE_ROOT is {env.get('WVO_STATE_ROOT')!r}, not the state folder {state}: "
            "run `wvo-mcp init --force` to rewrite the entry",
        )
    params = StdioServerParameters(
        command=entry["command"],
        args=[str(a) for a in entry.get("args") or []],
        env={**os.environ, **env},
        cwd=top,
    )
    try:
        with anyio.fail_after(SERVER_START_S):
            async with Client(params, read_timeout_seconds=30) as client:
                tools = (await client.list_tools()).tools
    except Exception as exc:  # any way the start can fail is this check's finding
        return Check(label, False, f"`{entry['command']}` did not serve MCP: {exc!r:.300}")
    return Check(label, True, f"starts and offers {len(tools)} tools")


async def _project(settings: Settings, check: str | None, onto: str | None) -> list[Check]:
    """The toolchain checks and workers see, and with `check` the autopilot's pre-flight."""
    if (missing := _missing(settings, settings.state_root)) is not None:
        return [Check("toolchain", False, f"not checked: no database ({missing})")]
    try:
        orchestrator = await Orchestrator.open(settings)
    except WvoError as exc:
        return [Check("toolchain", False, str(exc))]
    try:
        try:
            tools = await anyio.to_thread.run_sync(orchestrator.toolchain)
        except WvoError as exc:
            return [Check("toolchain", False, str(exc))]
        found = [Check("toolchain", True, f"read-only to checks and workers: {tools.describe()}")]
        git = orchestrator.git
        if check is None or git is None:
            return found
        try:
            ref = local_ref(git, onto) if onto else "HEAD"
            tip = await anyio.to_thread.run_sync(git.ref_tip, ref)
            if tip is None:
                raise ValidationFailed(f"{onto} is not in {git.repo.top}: fetch it first")
            result = await gate.checked(orchestrator, partial(_materialize, git), tip, check)
        except WvoError as exc:
            return [*found, Check("pre-flight", False, str(exc))]
        where = f"{onto or 'HEAD'} at {tip[:12]}"
        if isinstance(result, str):
            return [*found, Check("pre-flight", True, f"passes on {where}: {result}")]
        detail = lander.preflight_failure(check, where, str(result), tools.describe())
        return [*found, Check("pre-flight", False, detail)]
    finally:
        await orchestrator.close()


def _remote(settings: Settings, git: Git, onto: str) -> Check:
    """`--onto origin/main`: the remote reached with the person's credentials, its branch
    fetched, and a probe ref pushed there and deleted at once (nothing stays)."""
    name, branch = parse_onto(onto, remotes(git))
    if name is None:
        return Check("remote", True, f"{onto} is a branch of this repository: nothing to reach")
    probe = f"{PROBE_REFS}/{socket.gethostname()}-{os.getpid()}"
    try:
        remote = Remote(git, name, settings.remote_timeout_seconds)
        tip = remote.fetch_branch(branch)
        pushed = remote.push([f"{tip}:{probe}"]).get(probe)
        if pushed is None or not pushed.ok:
            why = pushed.summary if pushed is not None else "no answer"
            return Check("remote", False, f"{remote.where} refused a push to {probe}: {why}")
        remote.forget({probe: tip})
    except WvoError as exc:
        return Check("remote", False, str(exc))
    return Check(
        "remote", True, f"{remote.where} reached and written to (a probe ref pushed and "
        f"deleted); {onto} at {tip[:12]}",
    )  # fmt: skip


def _forge(
    settings: Settings, git: Git, onto: str, api: str | None, via: str = "pull-request"
) -> list[Check]:
    """`--via pull-request` (`merge-request`): the forge behind the remote (or `api`:
    --forge-api, else WVO_FORGE_API) and why, the person's token for it and where it was
    read, each permission the queue needs, probed without writing anything, and the trust
    rule in force."""
    name, branch = parse_onto(onto, remotes(git))
    if name is None:
        return [Check("forge", False, f"--via {via} lands on a remote's branch; {onto} "
                      "is a local one")]  # fmt: skip
    given = api or settings.forge_api or None
    try:
        remote = Remote(git, name, settings.remote_timeout_seconds)
        located = select.locate(remote.url, given)
    except WvoError as exc:
        return [Check("forge", False, str(exc))]
    where, repository, host = located.api, located.repository, located.host
    found_by = _found_by(located, "--forge-api" if api else "WVO_FORGE_API" if given else None)
    try:
        app = github_app.configured() if located.kind == "github" else None
    except ValidationFailed as exc:
        return [Check("forge", False, f"{found_by}; {exc}")]
    timeout = settings.remote_timeout_seconds
    if app is not None:
        forge = select.as_app(located, app, timeout)
        asking = f"as GitHub App {app.id} (its key from {app.source}), its installation's tokens"
    else:
        token = credentials.token(host, kind=located.kind)
        if token is None:
            missing = credentials.missing(host, f"--via {via}", kind=located.kind)
            return [Check("forge", False, f"{found_by}; {missing}")]
        forge = select.client(located, token, timeout)
        asking = f"with a token for {host} (from {token.source})"
    try:
        access = forge.access(branch)
        rules = forge.requirements(branch)
    except WvoError as exc:
        return [Check("forge", False, f"{found_by}; {exc}")]
    found = [Check("forge", True, f"{repository} on {where}, {found_by}, {asking}; "
                   f"{branch} requires checks: {', '.join(rules.checks) or 'none'}, approving "
                   f"reviews: {rules.approvals}{_settings(forge, rules)}")]  # fmt: skip
    found += [Check(f"forge token: {a.permission}", a.ok, a.detail) for a in access]
    # Whose reviews count (and, for issues and the webhook, whose comments and labels act).
    found.append(Check("who steers", True, f"{_steers(settings, located.kind)} (docs/forge.md)"))
    return found


async def _deliveries(settings: Settings, git: Git, onto: str, api: str | None) -> Check:
    """Whether the forge's webhook reaches `serve --http` for the repository (news of its
    pull requests heard within a day: services/pull_news.py), and what it saves."""
    name, _ = parse_onto(onto, remotes(git))
    try:
        assert name is not None  # _forge says what is wrong with a local branch
        url = Remote(git, name, settings.remote_timeout_seconds).url
        located = select.locate(url, api or settings.forge_api or None)
        orchestrator = await Orchestrator.open(settings)
    except (AssertionError, WvoError) as exc:
        return Check("forge webhook", False, str(exc) or "no remote")
    try:
        heard = await orchestrator.db.read(
            partial(
                pull_news.latest,
                kind=located.kind,
                repository=located.repository,
                now=timeutil.now(),
            )
        )
    finally:
        await orchestrator.close()
    kind, repository = located.kind, located.repository
    saves = pull_news_rules.SAVED[kind]
    if heard is not None:
        return Check("forge webhook", True, f"deliveries for {repository} heard (the last at "
                     f"{heard:%Y-%m-%d %H:%M} UTC): each pull request is looked at when one "
                     f"says it may merge or go back: {saves}")  # fmt: skip
    route, secret = (("/webhooks/gitlab", "WVO_GITLAB_WEBHOOK_SECRET") if kind == "gitlab" else
                     ("/webhooks/github", "WVO_WEBHOOK_SECRET"))  # fmt: skip
    return Check("forge webhook", True, (
        f"no delivery heard for {repository} in a day: each open "
        f"{pulls.noun(kind)} is looked at every --forge-poll seconds while it waits, each "
        f"look counted. A webhook to `serve --http`'s {route} (with {secret}, --repo "
        f"{kind}:{repository}; events: {pull_news_rules.EVENTS[kind]}; docs/forge.md) "
        f"lands on events instead: {saves}"))  # fmt: skip


def _found_by(located: Located, named: str | None) -> str:
    """Which forge the API is and why: the API named (`named`: the flag or variable that
    named it), else the remote's host (forge/select.py's rule)."""
    forge, host = FORGES[located.kind], located.host
    if named is not None:
        path = "ends in /api/v4" if located.kind == "gitlab" else "does not end in /api/v4"
        return f"{forge}'s API, as {named} names it (its path {path})"
    if located.kind == "gitlab":
        said = "is gitlab.com" if host == "gitlab.com" else "names gitlab"
        return f"{forge}'s API, as the remote's host {host} {said}"
    if host == "github.com":
        return f"{forge}'s API, as the remote is on github.com"
    return (
        f"{forge}'s (an Enterprise Server's) API, as the remote's host {host} is neither "
        f"github.com nor a GitLab's by name (for a GitLab, give --forge-api "
        f"https://{host}/api/v4)"
    )


def _settings(forge: Forge, rules: Requirements) -> str:
    """What else the queue reads before merging: on GitLab the project's merge settings."""
    if forge.kind != "gitlab":
        return "; merged through GitHub's merge queue" if rules.merge_queue else ""
    from wvo_mcp.forge.gitlab import GitLab

    assert isinstance(forge, GitLab)
    project = forge.project()
    threads = project.get("only_allow_merge_if_all_discussions_are_resolved")
    return (
        f" (pipelines must succeed: {'yes' if rules.checks else 'no'}; all threads resolved: "
        f"{'yes' if threads else 'no'}); merge method {project.get('merge_method') or 'merge'}, "
        f"squash option {project.get('squash_option') or 'default_off'}"
        + ("; merged through a merge train" if rules.merge_queue else "; no merge train")
    )


def _steers(settings: Settings, kind: str) -> str:
    """The trust rule in force, in the forge's words for its roles."""
    trust = settings.trust
    said = trust.says()
    if kind != "gitlab" or trust.role == "nobody":
        return said
    roles = [GITLAB_ROLES[r] for r in ("admin", "maintain", "write", "triage")
             if RANKS[r] >= RANKS[trust.role]]  # fmt: skip
    return f"{said}; on GitLab: {', '.join(roles)} (an access token's bot user only when listed)"


async def _materialize(git: Git, commit: str, dest: Path) -> None:
    await anyio.to_thread.run_sync(trees.materialize, git, commit, dest)


def _sandbox(settings: Settings) -> Check:
    found = [c for c in sandbox.doctor(settings) if c.name != "none"]
    usable = [c.name for c in found if c.usable]
    if usable:
        return Check("sandbox", True, f"{', '.join(usable)} works")
    return Check("sandbox", False, sandbox.NOT_ISOLATED_HINT)


def _worker_limits() -> Check:
    """How each autopilot worker's resources are bounded here (the defaults; the providers
    file may change the figures, not the means)."""
    plan = run_limits.probe()
    return Check("worker limits", plan.complete, run_limits.describe(plan, WorkerLimits()))


CLIENT_FILES = {
    "claude": ".mcp.json",
    "codex": ".codex/config.toml",
    "gemini": ".gemini/settings.json",
    "opencode": "opencode.json",
}


def _wiring(state: Path, top: Path) -> Callable[[str], str]:
    """What says how a CLI kind is wired here (its client file, the providers file)."""
    entries = dict(_client_entries(top))
    path = state / "providers.yaml"
    try:
        workers = providers.parse(path.read_text(), str(path)).workers.values()
        kinds = {w.agent if w.kind == "acp" else w.kind for w in workers}
        source = str(path)
    except (OSError, WvoError):
        kinds, source = {"claude", "codex"}, "the packaged providers"  # what applies then

    def said(kind: str) -> str:
        client = CLIENT_FILES.get(kind, "")
        as_client = (
            f"a client of the wvo server ({client})"
            if isinstance(entries.get(client), dict)
            else f"not a client: {client} has no wvo server (`wvo-mcp init`)"
        )
        as_provider = (
            f"a provider in {source}"
            if kind in kinds
            else f"not a provider in {source}: `wvo-mcp init` adds it"
        )
        return f"{as_client}; {as_provider}"

    return said


def _cli(cli: clis.Cli) -> Check:
    if not cli.usable:
        return Check(cli.kind, False, cli.note)
    signed, said = clis.signed_in(cli)
    return Check(cli.kind, signed, f"{cli.version}, {said}; {_metered(cli.kind)}")


def _metered(kind: str) -> str:
    """Whether the autopilot's worker of this CLI is charged by its model API's answer."""
    codex_home = os.environ.get("CODEX_HOME") or str(Path.home() / ".codex")
    login = isolation.api_key_login(Path(codex_home) / "auth.json")
    if kind == "claude":
        worker = providers.WorkerKind(kind="claude")
    elif kind == "codex":
        worker = providers.WorkerKind(kind="codex")
    elif kind in ("gemini", "opencode"):
        api = clis.opencode_api() if kind == "opencode" else None
        worker = providers.WorkerKind(kind="acp", agent=kind, api=api)
    else:
        return "as a worker, charged by its own word"
    if worker_config.metered(worker, os.environ, login) is not None:
        return "as a worker, metered by its model API's answers"
    why = worker_config.UNMETERED_CODEX if kind == "codex" else worker_config.unmetered_acp(worker)
    return f"as a worker, NOT METERED: {why}"

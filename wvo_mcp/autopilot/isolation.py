"""Makes one run ready: its private home, its sandboxed command, its egress proxy.

One worker or reviewer run made ready to start: its private home filled with the files the
autopilot chose (settings, MCP config with the run's token, its CLI's credentials, the
prompt), its command line wrapped in the worker sandbox with an egress proxy for it, and all
of it removed when the run ends. What the run sees is docs/security.md's "Workers"."""

import contextlib
import dataclasses
import json
import os
import shutil
import urllib.parse
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import anyio
import anyio.abc

from wvo_mcp import providers, removal, scratch_dirs
from wvo_mcp.autopilot import worker_config, worker_output
from wvo_mcp.autopilot.gateway import Gateway
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.rules import billing
from wvo_mcp.sandbox import bwrap, egress, toolchain, workers
from wvo_mcp.sandbox.environment import DEFAULT_PATH
from wvo_mcp.sandbox.meter import Meter, Upstream
from wvo_mcp.sandbox.run_limits import Fence, open_fence
from wvo_mcp.sandbox.toolchain import Toolchain
from wvo_mcp.services.bearer_tokens import Scope

# A CLI's own credentials, copied from the person's home into the run's (and nothing else of
# it): (kind, the file under the home the CLI reads, the variable that moves that folder).
CREDENTIALS: dict[providers.Kind, tuple[tuple[str, str | None], ...]] = {
    "claude": ((".claude/.credentials.json", "CLAUDE_CONFIG_DIR"),),
    "codex": ((".codex/auth.json", "CODEX_HOME"),),
    "command": (),
    "acp": (),  # an adapter of Claude Code or Codex: that CLI's (worker_config.configured_as)
}


@dataclass(frozen=True)
class Ready:
    """What to start: the whole command line, its environment and working folder, and what
    goes to its stdin (the prompt: it carries the lease token, so never argv)."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    stdin: bytes
    pass_fds: tuple[int, ...] = ()  # the toolchain's folders and the home's files, for bwrap
    fence: Fence | None = None  # its resource limits (none when unsandboxed)
    meter: Meter | None = None  # what its model API traffic used (sandboxed, where metered)
    # Its CLI calls a model API that no meter stands in front of (signed in to its vendor's
    # service, or unsandboxed): charged its CLI's word, or the ceiling when it gives none.
    unmetered_api: bool = False


@dataclass(frozen=True)
class Run:
    """One run to prepare."""

    kind: providers.WorkerKind
    agent_id: str
    task_id: str
    model: str
    prompt: str
    workdir: Path  # its own repository (a worker's) or a fresh checkout (a reviewer's)
    scope: Scope
    writable: bool = True  # a reviewer's checkout is read-only
    borrowed: tuple[Path, ...] = ()  # objects its repository borrows, seen read-only
    hidden: tuple[Path, ...] = ()  # what no folder it sees may hold (state, the person's own)
    toolchain: Toolchain = field(default_factory=Toolchain)  # the project's, read-only
    mark: str = ""  # on every process of the run (orphans.MARK), so none outlives it
    owner: str = ""  # its state folder's mark (scratch_dirs.owner), in its cgroup's name


@contextlib.asynccontextmanager
async def prepared(
    run: Run, gateway: Gateway, *, sandboxed: bool, outside: Mapping[str, str] = os.environ
) -> AsyncIterator[Ready]:
    """Everything `run` needs, made for it alone and removed afterwards; its token is revoked
    when the context ends, whatever happened to the process."""
    program, install = workers.installation(run.kind.program, outside.get("PATH"))
    # 0700, outside every repository, named for the state folder (autopilot gc)
    private = scratch_dirs.make("run", gateway.settings.state_root)
    token = await gateway.token(run.agent_id, run.scope)
    stack = contextlib.ExitStack()  # the toolchain's open folders
    try:
        home = workers.private_dir(private, "home")
        launch = worker_config.Launch(
            agent_id=run.agent_id,
            task_id=run.task_id,
            model=run.model,
            workdir=run.workdir,
            home=workers.HOME if sandboxed else home,
            mcp_url=gateway.url,
            sandboxed=sandboxed,
            mark=run.mark,
        )
        _write_home(home, worker_config.files(run.kind, launch, token, run.prompt, str(program)))
        _copy_credentials(worker_config.configured_as(run.kind), home, outside)
        env = worker_config.environment(run.kind, launch, token, outside)
        argv = worker_config.argv(run.kind, launch, str(program))
        stdin = run.prompt.encode()
        if not sandboxed:
            toolchain.link(run.toolchain, run.workdir)
            path = outside.get("PATH", DEFAULT_PATH)
            tools = run.toolchain.env(run.workdir, path, sandboxed=False)
            unmetered = worker_config.names_api(run.kind)
            yield Ready(argv, {**env, "PATH": path, **tools}, run.workdir, stdin,
                        unmetered_api=unmetered)  # fmt: skip
            return
        plain = Ready(argv, env, run.workdir, stdin)
        socket = private / "egress.sock"
        owned = dataclasses.replace(run, owner=scratch_dirs.owner(gateway.settings.state_root))
        sandbox = _sandboxed(owned, plain, gateway.url, socket, home, install, stack, outside)
        async with sandbox as ready:
            yield ready
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(stack.close)
            await gateway.revoke(token)
        # An unsandboxed run's home is in it, written as deep as the CLI went.
        with contextlib.suppress(OSError):  # what stays is left for autopilot gc
            removal.remove(private)


@contextlib.asynccontextmanager
async def _sandboxed(
    run: Run,
    plain: Ready,
    mcp_url: str,
    socket: Path,
    home: Path,
    install: Path,
    stack: contextlib.ExitStack,
    outside: Mapping[str, str],
) -> AsyncIterator[Ready]:
    """`plain` (the CLI's own command line) in bubblewrap, behind its own egress proxy on
    `socket`, its resource fence and, for Claude Code, its meter; what it opens is closed
    with `stack`."""
    async with anyio.create_task_group() as serving:
        apis = worker_config.model_apis(run.kind, outside)
        measured = None
        login = api_key_login(home / ".codex" / "auth.json")
        found = worker_config.metered(run.kind, outside, login)
        if found is None:
            plain = dataclasses.replace(plain, unmetered_api=worker_config.names_api(run.kind))
        else:  # its model API only through the meter
            api, upstream = found
            measured = Meter(Upstream.of(upstream), api)
            await serving.start(measured.serve)
            inside = f"http://127.0.0.1:{measured.port}{urllib.parse.urlsplit(upstream).path}"
            argv, env = list(plain.argv), dict(plain.env)
            worker_config.through_meter(run.kind, argv, env, inside.rstrip("/"))
            plain = dataclasses.replace(plain, argv=argv, env=env)
            apis = [f"http://127.0.0.1:{measured.port}", *run.kind.egress]
        try:
            ready = await _fenced(run, plain, [*apis, mcp_url], socket, home, install, stack,
                                  outside, serving)  # fmt: skip
            yield dataclasses.replace(ready, meter=measured, unmetered_api=plain.unmetered_api)
        finally:
            serving.cancel_scope.cancel()


async def _fenced(
    run: Run,
    plain: Ready,
    urls: list[str],
    socket: Path,
    home: Path,
    install: Path,
    stack: contextlib.ExitStack,
    outside: Mapping[str, str],
    serving: anyio.abc.TaskGroup,
) -> Ready:
    """The sandbox's command line and environment, its fence, and its egress proxy started
    in `serving`, letting through `urls` only."""
    endpoints = tuple(dict.fromkeys(egress.endpoint_of(url) for url in urls))
    read_only = (install, *workers.package_dirs(), *run.borrowed, *mounts(run.kind))
    _check_hidden(read_only, (*run.hidden, Path(outside.get("HOME", "/nonexistent"))))
    opened = toolchain.opened(run.toolchain, run.workdir)
    view = workers.View(
        workdir=run.workdir,
        home=home,
        read_only=read_only,
        socket=socket,
        endpoints=endpoints,
        writable=run.writable,
        toolchain=run.toolchain,
        tools=tuple(stack.enter_context(opened)),
        limits=run.kind.limits,
        home_files=_open_home(home, stack),
    )
    found = bwrap.probe()
    binary = bwrap.find()
    if not found.usable or binary is None:
        raise ValidationFailed(f"cannot sandbox {run.agent_id}: {workers.check()}")
    limits = await anyio.to_thread.run_sync(open_fence, run.kind.limits, run.owner)
    stack.callback(limits.close)  # whatever of the run is left, killed; its cgroup gone
    line = workers.command_line(
        view,
        plain.argv,
        userns=found.userns,
        host_links=bwrap.host_links(),
        bwrap_binary=binary,
        plan=limits.plan,
    )
    proxy = egress.EgressProxy(socket, endpoints)
    await serving.start(proxy.serve)
    # The CLI's environment is bwrap's own: no value of it is in a command line.
    return Ready(
        limits.launcher(line),
        workers.environment(view, plain.env),
        run.workdir,
        plain.stdin,
        (*(t.fd for t in view.tools), *(fd for fd, _ in view.home_files)),
        limits,
    )


def metered(ready: Ready, finish: worker_output.Finish) -> worker_output.Finish:
    """The run's usage: per figure, the most of what its meter counted (what nothing in the
    sandbox can lower) and what its CLI said (a CLI that made no metered call, a fake).
    Unmetered, its CLI's word; a model API's run whose CLI gave none (killed, stopped,
    crashed), the ceiling of one request (rules/billing.py): what it used is unknown. A
    refused login or a rate limit was billed nothing."""
    word = finish.usage if finish.said_usage else None
    if ready.meter is None:
        billed = finish.outcome not in ("auth", "rate_limited")
        if ready.unmetered_api and not finish.said_usage and billed:
            ceiling = worker_output.Usage(billing.CEILING_INPUT, billing.CEILING_OUTPUT)
            return dataclasses.replace(finish, usage=ceiling)
        return dataclasses.replace(finish, said=word)
    tally, said = ready.meter.tally, finish.usage
    usage = worker_output.Usage(
        max(tally.input_tokens, said.input_tokens),
        max(tally.output_tokens, said.output_tokens),
        said.cost_usd,
    )
    counted = worker_output.Usage(tally.input_tokens, tally.output_tokens)
    return dataclasses.replace(finish, usage=usage, metered=counted, said=word)


def limited(ready: Ready, finish: worker_output.Finish) -> worker_output.Finish:
    """A run that failed having reached a resource limit was stopped by that limit: said so,
    never passed off as its CLI's crash. What its CLI reported (a success, a rate limit, a
    refused login) stands."""
    if ready.fence is None or finish.outcome != "failure":
        return finish
    reached = ready.fence.reached()
    if not reached:
        return finish
    return dataclasses.replace(finish, message=f"{reached}: {finish.message}", limit=reached)


def _open_home(home: Path, stack: contextlib.ExitStack) -> tuple[tuple[int, PurePosixPath], ...]:
    """Every file the autopilot put in the home, open for bwrap to copy into the run's own
    (closed with `stack`)."""
    found = []
    for folder, _, names in os.walk(home):
        for name in names:
            path = Path(folder) / name
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            stack.callback(os.close, fd)
            found.append((fd, PurePosixPath(path.relative_to(home).as_posix())))
    return tuple(found)


def _write_home(home: Path, files: Mapping[PurePosixPath, str]) -> None:
    for relative, text in files.items():
        path = home / relative
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)


def _copy_credentials(kind: providers.Kind, home: Path, outside: Mapping[str, str]) -> None:
    """The CLI's own login (an OAuth credentials file), if the person has one: copied, so
    the run cannot change the person's."""
    person = Path(outside.get("HOME", "/nonexistent"))
    for relative, moved_by in CREDENTIALS[kind]:
        folder, name = Path(relative).parent, Path(relative).name
        moved = outside.get(moved_by) if moved_by is not None else None
        source = Path(moved) / name if moved else person / relative
        if not source.is_file() or source.is_symlink():
            continue
        dest = home / folder / name
        dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out, source.open("rb") as given:
            shutil.copyfileobj(given, out)


def api_key_login(auth: Path) -> bool:
    """Whether a Codex login (its auth.json) is an API key's (`codex login --with-api-key`),
    which its base URL moves, rather than ChatGPT's, which it does not."""
    try:
        found = json.loads(auth.read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(found, dict):
        return False
    return found.get("auth_mode") == "apikey" or (
        bool(found.get("OPENAI_API_KEY")) and not found.get("tokens")
    )


def _check_hidden(read_only: tuple[Path, ...], hidden: tuple[Path, ...]) -> None:
    """Refuse to show a folder that holds what a worker must never see (the state folder,
    the person's repository or home): a CLI installed there would bring it along."""
    for shown in read_only:
        for secret in hidden:
            real = secret.resolve()
            if shown == real or shown in real.parents:
                raise ValidationFailed(
                    f"a worker would see {shown} read-only (its CLI's folder, or a mount), and "
                    f"it holds {secret}: install the CLI in a folder of its own, or point "
                    "`executable` or `mounts` in the providers file at one"
                )


def mounts(kind: providers.WorkerKind) -> list[Path]:
    """The providers file's `worker.mounts`: host folders the CLI needs, read-only."""
    found = []
    for given in kind.mounts:
        path = Path(given)
        if not path.is_absolute() or not path.exists():
            raise ValidationFailed(
                f"worker mount {given!r} is not an existing absolute path; fix `mounts` in "
                "the providers file"
            )
        found.append(path.resolve())
    return found

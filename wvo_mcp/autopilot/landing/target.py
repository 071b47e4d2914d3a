"""Where finished work lands (a local or remote branch, or its own) and its queue's name.

Where finished work lands, how the merge queue names it, and how it asks the remote.

A target is a branch of the person's repository (`--onto main`), a branch of the team's
remote, named as git names it (`--onto origin/main`), or each task's own branch (`--merge
leave`, pushed to a remote with `--push origin`).

The queue names a target by its repository and branch (`<repository>#<branch>`): a remote
by its URL without credentials, so autopilots on many hosts share one queue for it; a local
repository by its host and path, so two hosts never share a queue for two repositories.

Carries out `rules/outage.py` (`OutageGuard.call`: each outage said once, the remote asked again
only after its back-off)."""

import socket
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import anyio.to_thread

from wvo_mcp.errors import Fault, ValidationFailed, WvoError
from wvo_mcp.forge import Forge
from wvo_mcp.git import Git
from wvo_mcp.git.remote import TASK_REFS, Remote, parse_onto, remotes
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.outage import Outage

T = TypeVar("T")
LEAVE = "wvo/*"  # --merge leave: each task's own branch


class OutageGuard:
    """Something remote as the autopilot's parts ask it: off the event loop, each outage
    said once when it starts and once when it ends, and asked again only after as long as
    it asked us to wait (a rate limit's time), or else a back-off (rules/outage.py)."""

    def __init__(self, what: str, where: str, say: Callable[[str], None]) -> None:
        self.what = what  # as messages name it: "the remote", "the forge"
        self.where = where  # which one
        self.say = say
        self.outage = Outage()

    def ready(self) -> bool:
        return self.outage.ready(time.monotonic())

    async def call(self, fn: Callable[..., T], *args: object) -> T:
        """`fn(*args)` in a thread; a Fault is recorded (and said, when news) and raised."""
        try:
            found = await anyio.to_thread.run_sync(fn, *args)
        except Fault as exc:
            now = time.monotonic()
            if exc.kind != "missing" and self.outage.failed(now, exc.kind, str(exc),
                                                            exc.retry_after):  # fmt: skip
                then = ", as it asked" if exc.retry_after > 0 else ", then less often"
                self.say(
                    f"{self.what} holds the queue: {exc}. Nothing is lost and nothing is "
                    f"charged: trying again in {self.outage.delay:.0f} s{then}"
                )
            raise
        lasted = self.outage.answered(time.monotonic())
        if lasted is not None:
            self.say(f"{self.what} ({self.where}) answers again after {lasted:.0f} s")
        return found

    @property
    def held(self) -> str:
        """Why it holds the queue now ('' while it answers)."""
        return self.outage.why


class Reach(OutageGuard):
    """The team's git remote."""

    def __init__(self, remote: Remote, say: Callable[[str], None]) -> None:
        super().__init__("the remote", remote.name, say)
        self.remote = remote


class ForgeReach(OutageGuard):
    """The forge a target lands through (--via pull-request)."""

    def __init__(self, forge: Forge, say: Callable[[str], None]) -> None:
        super().__init__("the forge", forge.where, say)
        self.forge = forge


@dataclass(frozen=True)
class Target:
    key: str  # the queue's name for it
    name: str  # as a person and a worker see it: main, origin/main ('' for --merge leave)
    branch: str  # the branch in its repository ('' for --merge leave)
    ref: str  # the local ref its tip is read from ('' for --merge leave)
    reach: Reach | None = None  # the remote it lands on (or, leave, pushes branches to)
    forge: ForgeReach | None = None  # --via pull-request: the forge it lands through
    legacy: str | None = None  # its queue's name before targets were named by repository

    @property
    def remote(self) -> Remote | None:
        return None if self.reach is None else self.reach.remote


def resolve(
    git: Git,
    strategy: str,
    onto: str | None,
    push: str | None,
    timeout: float,
    say: Callable[[str], None],
    via: str = "push",
    forge_api: str | None = None,
) -> Target:
    """The target `--merge`, `--onto`, `--push` and `--via` name, checked against the
    repository (and, through pull requests, the forge's token found)."""
    if via == "pull-request" and strategy == "leave":
        raise ValidationFailed(
            "--via pull-request lands through the forge: give --merge merge (or rebase) and "
            "--onto REMOTE/BRANCH (origin/main)"
        )
    if strategy == "leave":
        if push is None:
            return Target(f"{here(git)}#{LEAVE}", "", "", "", legacy="")
        reach = Reach(Remote(git, push, timeout), say)
        return Target(f"{reach.remote.where}#{LEAVE}", "", "", "", reach)
    if push is not None:
        raise ValidationFailed(
            f"--push {push} is for --merge leave; with --merge {strategy}, name the remote's "
            f"branch to land on: --onto {push}/BRANCH"
        )
    if not onto:
        raise ValidationFailed(
            f"--merge {strategy} needs --onto BRANCH: a branch of {git.repo.top} (main), or of "
            "a remote, as git names it (origin/main)"
        )
    name, branch = parse_onto(onto, remotes(git))
    if name is None and via == "pull-request":
        raise ValidationFailed(
            f"--via pull-request lands on a remote's branch: --onto {onto} names a local one; "
            "name the remote's (origin/main)"
        )
    if name is None:
        key = f"{here(git)}#{branch}"
        return Target(key, branch, branch, f"refs/heads/{branch}", legacy=branch)
    if git.has_branch(onto):
        raise ValidationFailed(
            f"--onto {onto} is ambiguous: {git.repo.top} has a local branch of that name and a "
            f"remote {name}; rename the local branch"
        )
    reach = Reach(Remote(git, name, timeout), say)
    forge = None if via != "pull-request" else ForgeReach(_forge(reach.remote, forge_api,
                                                                  timeout), say)  # fmt: skip
    return Target(f"{reach.remote.where}#{branch}", onto, branch, reach.remote.tracking(branch),
                  reach, forge)  # fmt: skip


def _forge(remote: Remote, api: str | None, timeout: float) -> Forge:
    """The forge that hosts `remote` (or `api`: --forge-api, else WVO_FORGE_API), asked with
    the person's token for its host (forge/credentials.py)."""
    from wvo_mcp.forge import select

    return select.connect(select.locate(remote.url, api), timeout)


ENDED = ("done", "cancelled", "gone")  # a task ref whose task is one of these may go


async def task_refs(orchestrator: Orchestrator, remote: Remote) -> list[tuple[str, str, str]]:
    """Each ref that carried a submission to the remote (refs/wvo/tasks/<task>), with the
    commit it names and its task's status ('gone': no such task). Raises Fault."""
    found = await anyio.to_thread.run_sync(remote.task_refs)
    listed = []
    for ref, commit in sorted(found.items()):
        task_id = urllib.parse.unquote(ref.removeprefix(f"{TASK_REFS}/"))
        try:
            status = (await orchestrator.get_task(task_id)).status.value
        except WvoError:
            status = "gone"
        listed.append((ref, commit, status))
    return listed


def local_ref(git: Git, onto: str) -> str:
    """The local ref `--onto` reads: refs/remotes/origin/main for a remote's branch."""
    name, branch = parse_onto(onto, remotes(git))
    return f"refs/heads/{onto}" if name is None else f"refs/remotes/{name}/{branch}"


def here(git: Git) -> str:
    """This repository as the queue names it: this host and its git directory."""
    return f"{host_name()}:{git.common_dir}"


def host_name() -> str:
    """The hostname, with this machine's id where there is one: hostnames repeat."""
    try:
        machine = Path("/etc/machine-id").read_text().strip()[:8]
    except OSError:
        machine = ""
    return socket.gethostname() + (f"~{machine}" if machine else "")

"""`autopilot gc`: finds what finished work left behind and removes what tidying allows.

`wvo-mcp autopilot gc`: find what the autopilot leaves behind (workers' repositories under
<repo>.wvo-worktrees, task branches wvo/<task>, run logs under <state>/runs, the scratch
folders this state folder's runs made in the temporary folder: scratch_dirs.py), gather the
facts tidying.judge needs, and remove what it allows. A dry run removes nothing and lists the
same verdicts.

A worker's repository is hostile data (docs/security.md): git never runs in it. Its refs
are read as files (git.refs.read_refs) and its files are compared with its HEAD's tree from
the person's repository (git.judging.differs); reachability is asked of the person's repository
only. Nothing found is followed through a symbolic link.

Carries out `rules/tidying.py`."""

import dataclasses
import os
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal

import anyio.to_thread

from wvo_mcp import removal, scratch_dirs, timeutil
from wvo_mcp.autopilot import inuse, leftovers, orphans, recover
from wvo_mcp.autopilot.landing.target import ENDED, local_ref, task_refs
from wvo_mcp.config import Settings
from wvo_mcp.errors import Fault, ValidationFailed, WvoError
from wvo_mcp.git import Git, Unjudged, branch_name, judging, locate, read_refs
from wvo_mcp.git.remote import TASK_REFS, Remote, parse_onto, remotes
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.tidying import Candidate, Task, Verdict, judge
from wvo_mcp.rules.transitions import Status
from wvo_mcp.services import landing_queue
from wvo_mcp.store import Tx

PLANNER = "wvo-planner"  # the planner's folder (worktrees and runs): no task's
EVENTS_READ = 200  # of a cancelled task, newest first, looking for who cancelled it
SHORT = 12


@dataclass(frozen=True)
class Where:
    """Where to look, and the target whose history counts as landed."""

    worktrees: Path | None = None  # None: <repo>.wvo-worktrees beside the repository
    onto: str | None = None
    scratch: Path | None = None  # None: the temporary folder runs make theirs in


@dataclass(frozen=True)
class Outcome:
    what: str
    verdict: Literal["remove", "keep"]
    reason: str


@dataclass(frozen=True)
class _Landed:
    """A task's latest queue entry, landed: its submitted tip, and what the landing made."""

    entry: int
    commit: str
    target: str  # '' : --merge leave (verified and done on its own branch)
    new: str  # the target's commit after the landing ('' when none moved)


@dataclass(frozen=True)
class _Found:
    candidate: Candidate
    remove: Callable[[], None]
    task_id: str | None = None  # whose database facts to read again before removing


async def collect(
    orchestrator: Orchestrator, settings: Settings, where: Where, *, dry_run: bool
) -> list[Outcome]:
    """Every candidate with its verdict; without dry_run, what is judged removable is removed
    (_apply)."""
    places = _places(settings, where)
    runs = await orchestrator.autopilot_runs(leftovers.stale_before())
    swept: list[Outcome] = []
    if not dry_run:  # each gone run ended and closed here: no later gc takes it up again
        stale = leftovers.stale_before()
        for run in [r for r in runs if orphans.gone(r, stale) and orphans.on_this_host(r)]:
            said = await recover.end_gone(orchestrator, run)
            swept.append(Outcome(f"autopilot run {run['id']}", "remove", said))
        runs = []  # their processes ended already: the sweep is left their cgroups, folders
    left = await anyio.to_thread.run_sync(
        partial(leftovers.sweep, settings.state_root, runs, dry_run=dry_run, scratch=where.scratch)
    )
    swept += [Outcome(f.what, "remove" if f.done else "keep", f.why) for f in left]
    names = await anyio.to_thread.run_sync(places.task_names)
    facts = await _facts(orchestrator, names)
    found = await anyio.to_thread.run_sync(places.gather, facts)
    verdicts = [judge(f.candidate) for f in found]
    swept += await _remote_refs(orchestrator, settings, places.git, where.onto, dry_run)
    if not dry_run:
        return swept + await _apply(orchestrator, places, names, found, verdicts)
    pairs = zip(found, verdicts, strict=True)
    return swept + [_outcome(f.candidate, v.remove, v.reason) for f, v in pairs]


async def _remote_refs(
    orchestrator: Orchestrator, settings: Settings, git: Git, onto: str | None, dry_run: bool
) -> list[Outcome]:
    """With --onto naming a remote's branch: the refs that carried submissions there
    (refs/wvo/tasks/<task>), each removed once its task is done, cancelled or gone (while
    it still names the commit read), else kept: the task's next attempt starts from it."""
    name = parse_onto(onto, remotes(git))[0] if onto else None
    if name is None:
        return []
    remote = Remote(git, name, settings.remote_timeout_seconds)
    try:
        found = await task_refs(orchestrator, remote)
    except Fault as exc:
        return [Outcome(f"{name}: {TASK_REFS}/*", "keep", f"not read: {exc}")]
    outcomes, doomed = [], {}
    for ref, commit, status in found:
        if status in ENDED:
            doomed[ref] = commit
            outcomes.append(Outcome(f"{name}: {ref}", "remove", f"its task is {status}"))
        else:
            why = f"its task is {status}: its next attempt starts from it"
            outcomes.append(Outcome(f"{name}: {ref}", "keep", why))
    if doomed and not dry_run:
        try:
            await anyio.to_thread.run_sync(remote.forget, doomed)
        except Fault as exc:
            return [Outcome(o.what, "keep", f"not removed: {exc}") for o in outcomes]
    return outcomes


async def _apply(
    orchestrator: Orchestrator,
    places: "_Places",
    names: Sequence[str],
    found: Sequence[_Found],
    verdicts: Sequence[Verdict],
) -> list[Outcome]:
    """Remove what was judged removable, once judged again on its task's facts and the
    processes using it read afresh: a task claimed, or a run started, since the first read
    keeps what it uses."""
    fresh = await _facts(orchestrator, names)
    targets = [f for f, v in zip(found, verdicts, strict=True) if v.remove]
    using = await anyio.to_thread.run_sync(
        inuse.users, [Path(f.candidate.what) for f in targets if f.candidate.kind != "branch"]
    )
    outcomes = []
    emptied = set()
    for item, verdict in zip(found, verdicts, strict=True):
        candidate = item.candidate
        if verdict.remove:
            candidate = places.refreshed(candidate, fresh, using, item.task_id)
            verdict = judge(candidate)
        if verdict.remove:
            try:
                await anyio.to_thread.run_sync(item.remove)
            except (OSError, WvoError) as exc:
                verdict = Verdict(False, f"could not remove it: {exc}")
            if verdict.remove and candidate.kind == "repository":
                emptied.add(Path(candidate.what).parent)
        outcomes.append(_outcome(candidate, verdict.remove, verdict.reason))
    await anyio.to_thread.run_sync(_rmdirs, emptied)
    return outcomes


def _rmdirs(folders: set[Path]) -> None:
    """A task's folder of repositories goes once gc emptied it (the autopilot makes it again
    for a later run)."""
    for folder in folders:
        try:
            os.rmdir(folder)
        except OSError:
            continue  # something in it stays


def _places(settings: Settings, where: Where) -> "_Places":
    git = _person_repo(settings)
    if where.onto is not None and git.ref_tip(local_ref(git, where.onto)) is None:
        raise ValidationFailed(
            f"--onto {where.onto!r}: no such branch in {git.repo.top}; name the branch finished "
            "work lands on, or leave --onto out (then only landed submissions and cancellations "
            "count)"
        )
    top = git.repo.top
    worktrees = where.worktrees or top.with_name(top.name + ".wvo-worktrees")
    scratch = where.scratch or Path(tempfile.gettempdir())
    runs = settings.state_root / "runs"
    found = (worktrees.resolve(), runs.resolve(), scratch.resolve())
    return _Places(git, *found, where.onto, settings.state_root)


def _outcome(c: Candidate, remove: bool, reason: str) -> Outcome:
    return Outcome(c.what, "remove" if remove else "keep", reason)


def _person_repo(settings: Settings) -> Git:
    workspace = settings.workspace_root.resolve()
    repo = locate(workspace)
    if repo is None:
        raise ValidationFailed(
            f"{workspace} is not in a git repository: run gc where the autopilot ran, or point "
            "WVO_WORKSPACE_ROOT at its repository"
        )
    return Git(repo, repo.top, exclude=[settings.state_root])


def task_of(name: str) -> str | None:
    """The task a folder or branch name stands for (branch_name's encoding undone), or None
    when no task's name encodes to it (or it is the planner's)."""
    if name == PLANNER:
        return None
    task_id = urllib.parse.unquote(name)
    return task_id if task_id and branch_name(task_id) == f"wvo/{name}" else None


# -- the database's facts ----------------------------------------------------------------


async def _facts(
    orchestrator: Orchestrator, names: Sequence[str]
) -> dict[str, tuple[Task, _Landed | None]]:
    now = timeutil.to_text(orchestrator.clock())
    return await orchestrator.db.read(partial(_read_tasks, task_ids=names, now=now))


def _read_tasks(
    tx: Tx, task_ids: Sequence[str], now: str
) -> dict[str, tuple[Task, _Landed | None]]:
    """Each task of `task_ids` that exists, as one snapshot."""
    found = {}
    for task_id in task_ids:
        row = tx.one("task_by_id", (task_id,))
        if row is None:
            continue
        expires = row["lease_expires_at"]
        holder = row["assigned_to"] if expires is not None and expires > now else None
        open_entry = landing_queue.open_entry(tx, task_id)
        cancelled_by = None
        if row["status"] == Status.CANCELLED:
            for event in tx.all("recent_events", (task_id, EVENTS_READ)):
                if event["to_status"] == Status.CANCELLED:
                    actor = event["actor"]
                    cancelled_by = actor if actor.startswith("person:") else None
                    break
        task = Task(task_id, row["status"], holder or None,
                    None if open_entry is None else open_entry.state, cancelled_by)  # fmt: skip
        found[task_id] = (task, _landed(tx, task_id))
    return found


def _landed(tx: Tx, task_id: str) -> _Landed | None:
    row = tx.one("latest_entry", {"task_id": task_id})
    if row is None or row["state"] != "landed" or row["landing_id"] is None:
        return None
    made = landing_queue.landing(tx, row["landing_id"])
    if made is None or made.state != "landed":
        return None
    return _Landed(row["id"], row["commit_sha"], row["target"], made.new if made.old else "")


# -- what is on disk and in git ----------------------------------------------------------


class _Places:
    def __init__(
        self,
        git: Git,
        worktrees: Path,
        runs: Path,
        scratch: Path,
        onto: str | None,
        state_root: Path,
    ) -> None:
        self.git = git
        self.worktrees = worktrees
        self.runs = runs
        self.scratch = scratch
        self.state_root = state_root  # only its runs' scratch folders are looked at
        self.onto = onto
        self.onto_tip = git.ref_tip(local_ref(git, onto)) if onto else None
        self._contains: dict[tuple[str, str], bool] = {}

    def task_names(self) -> list[str]:
        """Every task a folder or branch gc looks at names."""
        names = {e.name for e in _entries(self.worktrees)} | {e.name for e in _entries(self.runs)}
        names |= {b.removeprefix("wvo/") for b in self.git.branches("wvo")}
        return sorted(filter(None, (task_of(n) for n in names)))

    def gather(self, facts: dict[str, tuple[Task, _Landed | None]]) -> list[_Found]:
        repos = list(self._repositories(facts))
        folders = [Path(f.candidate.what) for f in repos if f.candidate.odd is None]
        logs = list(self._logs(facts, repos))
        scratch = list(self._scratch())
        folders += [Path(f.candidate.what) for f in [*logs, *scratch] if f.candidate.odd is None]
        using = inuse.users(folders)
        found = [*repos, *self._branches(facts), *logs, *scratch]
        return [dataclasses.replace(f, candidate=_used(f.candidate, using)) for f in found]

    def refreshed(
        self,
        c: Candidate,
        facts: dict[str, tuple[Task, _Landed | None]],
        using: dict[Path, list[str]] | None,
        task_id: str | None,
    ) -> Candidate:
        """`c` with its task's facts and its users read again."""
        if task_id is not None:
            c = dataclasses.replace(c, task=facts.get(task_id, (None, None))[0])
        return c if c.kind == "branch" else _used(c, using)

    # -- repositories

    def _repositories(self, facts: dict[str, tuple[Task, _Landed | None]]) -> Iterator[_Found]:
        for entry in _entries(self.worktrees):
            path = Path(entry.path)
            odd = _odd(entry)
            if odd is not None:
                yield _Found(Candidate("repository", str(path), odd=odd), _never)
                continue
            if entry.name == PLANNER:
                for run in _entries(path):
                    yield self._repository(run, PLANNER, None, None, planner=True)
                continue
            task_id = task_of(entry.name)
            if os.path.lexists(path / ".git"):
                odd = ("a git worktree of the person's repository (an older autopilot's): "
                       "`git worktree remove` it when its work is merged")  # fmt: skip
                yield _Found(Candidate("repository", str(path), entry.name, odd=odd), _never)
                continue
            task, landed = facts.get(task_id or "", (None, None))
            for run in _entries(path):
                yield self._repository(run, entry.name, task, landed, task_id=task_id)

    def _repository(
        self,
        entry: os.DirEntry[str],
        name: str,
        task: Task | None,
        landed: _Landed | None,
        *,
        planner: bool = False,
        task_id: str | None = None,
    ) -> _Found:
        path = Path(entry.path)
        base = Candidate("repository", str(path), name, task, planner=planner)
        odd = _odd(entry) or (None if entry.name.isdigit() else
                              "not a run's repository (runs are numbered)")  # fmt: skip
        if odd is not None:
            return _Found(dataclasses.replace(base, odd=odd), _never)
        remove = partial(_remove_tree, path)
        refs = read_refs(path / ".git")
        if refs is None:
            why = "its refs cannot be read as data (a link, an odd file or no commit in its .git)"
            return _Found(dataclasses.replace(base, unreadable=why), remove, task_id)
        head = refs["HEAD"]
        try:
            stray = tuple(judging.differs(self.git, head, path, most=20))
        except ValidationFailed:
            why = f"its HEAD {head[:SHORT]} is in no repository but its own: work never taken"
            return _Found(dataclasses.replace(base, unreadable=why), remove, task_id)
        except Unjudged as exc:
            why = f"its files cannot be judged: {exc}"
            return _Found(dataclasses.replace(base, unreadable=why), remove, task_id)
        except Exception as exc:  # whatever a worker left there, gc goes on to the next
            why = f"its files cannot be judged: {type(exc).__name__}: {exc}"
            return _Found(dataclasses.replace(base, unreadable=why), remove, task_id)
        sources = self._sources(landed, name, repository=True)
        tips = {_shown(ref, sha): self._reach(sha, sources) for ref, sha in refs.items()}
        age = None if not planner else _age(path)
        candidate = dataclasses.replace(
            base, tips=tips, stray=stray, age_s=age, looked_in=self._looked_in()
        )
        return _Found(candidate, remove, task_id)

    # -- branches

    def _branches(self, facts: dict[str, tuple[Task, _Landed | None]]) -> Iterator[_Found]:
        for branch, tip in sorted(self.git.branches("wvo").items()):
            name = branch.removeprefix("wvo/")
            task_id = task_of(name)
            task, landed = facts.get(task_id or "", (None, None))
            sources = self._sources(landed, name, repository=False)
            holder = self.git.checked_out(branch)
            note = None
            if landed is not None and not landed.new:
                note = (f"task {task_id} was verified and done on this branch (--merge leave): "
                        "merge it, then run gc with --onto")  # fmt: skip
            candidate = Candidate(
                "branch", branch, name, task,
                tips={_shown(branch, tip): self._reach(tip, sources)},
                looked_in=self._looked_in(),
                checked_out=None if holder is None else str(holder),
                note=note,
            )  # fmt: skip
            yield _Found(candidate, partial(self._delete_branch, branch, tip), task_id)

    def _delete_branch(self, branch: str, tip: str) -> None:
        if not self.git.delete_branch(branch, tip):
            raise ValidationFailed(f"{branch} moved from {tip[:SHORT]} meanwhile")

    # -- run logs and scratch folders

    def _logs(
        self, facts: dict[str, tuple[Task, _Landed | None]], repos: list[_Found]
    ) -> Iterator[_Found]:
        kept: dict[str, int] = {}
        for item in repos:
            if not judge(item.candidate).remove:
                kept[item.candidate.name] = kept.get(item.candidate.name, 0) + 1
        for entry in _entries(self.runs):
            path = Path(entry.path)
            task_id = task_of(entry.name)
            task = facts.get(task_id or "", (None, None))[0]
            candidate = Candidate(
                "logs", str(path), entry.name, task, planner=entry.name == PLANNER,
                odd=_odd(entry), age_s=_age(path), kept_repositories=kept.get(entry.name, 0),
            )  # fmt: skip
            yield _Found(candidate, partial(_remove_tree, path), task_id)

    def _scratch(self) -> Iterator[_Found]:
        me = os.getuid()
        for entry in _entries(self.scratch):
            if not scratch_dirs.owned(entry.name, self.state_root):
                continue  # another state folder's (another project's), or no run's
            if scratch_dirs.maker(entry.name) is not None:
                continue  # a gateway's: it goes when its maker has (leftovers.py)
            try:
                if entry.stat(follow_symlinks=False).st_uid != me:
                    continue  # another user's: not ours to judge
            except OSError:
                continue  # gone meanwhile
            path = Path(entry.path)
            candidate = Candidate("scratch", str(path), odd=_odd(entry), age_s=_age(path))
            yield _Found(candidate, partial(_remove_tree, path))

    # -- reachability

    def _sources(
        self, landed: _Landed | None, name: str, *, repository: bool
    ) -> list[tuple[str, str]]:
        """Commits whose history is kept, each with how a person would check it."""
        found = []
        if self.onto and self.onto_tip:
            found.append((self.onto_tip, self.onto))
        if landed is not None and landed.new:
            onto, new, old = landed.target, landed.new[:SHORT], landed.commit[:SHORT]
            found.append((landed.new, f"{onto} as its landing left it ({new})"))
            found.append((landed.commit, f"{old}, landed onto {onto} (queue entry {landed.entry})"))
        elif landed is not None and repository:
            # --merge leave: the work is done on wvo/<task>, which stays for a person to
            # merge; what that branch still holds is kept by it.
            branch = f"wvo/{name}"
            tip = self.git.branch_tip(branch)
            if tip is not None and self._has(landed.commit, tip):
                found.append((landed.commit, f"{branch}, where it was verified and done"))
        return found

    def _reach(self, sha: str, sources: list[tuple[str, str]]) -> str | None:
        return next((why for commit, why in sources if self._has(sha, commit)), None)

    def _has(self, older: str, newer: str) -> bool:
        key = (older, newer)
        if key not in self._contains:
            self._contains[key] = self.git.contains(older, newer)
        return self._contains[key]

    def _looked_in(self) -> str:
        landed = "a landed submission of its task"
        return f"{self.onto} or {landed}" if self.onto else f"{landed} (no --onto given)"


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    """What is in `folder`, sorted; nothing when it is missing or not a folder."""
    try:
        with os.scandir(folder) as listed:
            return sorted(listed, key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _odd(entry: os.DirEntry[str]) -> str | None:
    if entry.is_symlink():
        return "a symbolic link, not a folder the autopilot made: left alone, never followed"
    if not entry.is_dir(follow_symlinks=False):
        return "not a folder the autopilot made: left alone"
    return None


def _age(path: Path) -> float | None:
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return max(0.0, time.time() - info.st_mtime)


def _used(c: Candidate, using: dict[Path, list[str]] | None) -> Candidate:
    if c.kind == "branch" or c.odd is not None:
        return c
    if using is None:
        return dataclasses.replace(c, odd="no /proc here: nothing tells whether a process uses it")
    return dataclasses.replace(c, users=tuple(using.get(Path(c.what), ())))


def _shown(ref: str, sha: str) -> str:
    return f"{ref.removeprefix('refs/heads/')} {sha[:SHORT]}"


def _remove_tree(path: Path) -> None:
    """`path` and everything in it, however deep; a link found on the way is removed, never
    followed; a folder a worker left unreadable is made readable first."""
    folder = os.open(path, _O_DIR)  # fails on a link: the folder was swapped meanwhile
    os.close(folder)
    removal.remove(path)


_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _never() -> None:
    raise AssertionError("judged to stay")

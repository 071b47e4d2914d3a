"""The team's git remote: the one git that uses the person's credentials.

The team's git remote, as the autopilot reaches it: the one git that uses the person's
credentials (their credential helper, ssh agent or key, a token in their git config).

It runs with the person's own environment and configuration, as `git push` in their shell
would, but still runs no program the repository names (hooks, fsmonitor), prompts nobody
(no terminal: a missing credential is a failure, not a wait), and is killed with everything
it started when it takes too long. Nothing sandboxed ever runs it or sees what it reads.

It moves only two kinds of refs there: a target branch, by a push that is a compare-and-swap
(it lands only while the branch is where the batch was stacked, and only ever adds to it),
and the autopilot's own refs under refs/wvo/, which carry each task's submitted commits to
whichever host lands them."""

import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from wvo_mcp.errors import Fault, ValidationFailed
from wvo_mcp.git.refs import ref_part, valid_ref
from wvo_mcp.git.run import Git, tail

TASK_REFS = "refs/wvo/tasks"  # on the remote: each task's latest submitted commit
PROBE_REFS = "refs/wvo/doctor"  # `doctor` pushes one here and deletes it at once

# The person's environment that reaching a remote may need: their home and configuration
# (credential helpers, ssh keys, url rewrites), their ssh agent, proxies and certificates.
PASSED = (
    "HOME", "PATH", "USER", "LOGNAME", "XDG_CONFIG_HOME", "SSH_AUTH_SOCK", "GIT_SSH",
    "GIT_SSH_COMMAND", "GIT_SSH_VARIANT", "GIT_ASKPASS", "SSH_ASKPASS", "GIT_SSL_CAINFO",
    "GIT_SSL_CAPATH", "SSL_CERT_FILE", "SSL_CERT_DIR", "http_proxy", "https_proxy",
    "no_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
)  # fmt: skip
# Still switched off: programs the repository could name, and work nobody asked for.
OFF: tuple[tuple[str, str], ...] = (
    ("core.hooksPath", os.devnull),
    ("core.fsmonitor", "false"),
    ("core.pager", "cat"),
    ("gc.auto", "0"),
    ("maintenance.auto", "false"),
    ("fetch.writeCommitGraph", "false"),
    ("submodule.recurse", "false"),
    ("push.recurseSubmodules", "no"),
    ("push.gpgSign", "false"),
    ("http.lowSpeedLimit", "1000"),  # a stalled transfer fails, and the queue holds
    ("http.lowSpeedTime", "30"),
)
_USERINFO = re.compile(r"(?<=://)[^/@]*@")
_SCP_USER = re.compile(r"^[^/@:]+@(?=[^/:]+:)")


def identity(url: str) -> str:
    """The remote as the queue names it: its URL without credentials or a user, and without
    a trailing `/` or `.git`, so every host names one repository alike."""
    bare = _SCP_USER.sub("", _USERINFO.sub("", url.strip()))
    bare = bare.rstrip("/")
    return bare.removesuffix(".git") or url


def redact(text: str) -> str:
    """`text` with any credentials in URLs cut out, for a message."""
    return _USERINFO.sub("", text)


def fault_kind(stderr: str) -> str:
    """What git's complaint means, from its words (pure)."""
    said = stderr.lower()
    if any(
        s in said
        for s in ("authentication failed", "permission denied", "could not read username",
                  "could not read password", "terminal prompts disabled", "access denied",
                  "invalid username or password", "http 401", "http 403", "returned error: 401",
                  "returned error: 403", "host key verification failed")
    ):  # fmt: skip
        return "auth"
    if "couldn't find remote ref" in said:
        return "missing"
    return "unreachable"


def task_ref(task_id: str) -> str:
    """Where a task's latest submitted commit waits on the remote for any host to land."""
    return f"{TASK_REFS}/{ref_part(task_id)}"


@dataclass(frozen=True)
class Pushed:
    ref: str
    flag: str  # git's: ' ' fast-forward, '*' new, '-' deleted, '=' up to date, '!' rejected
    summary: str

    @property
    def ok(self) -> bool:
        return self.flag != "!"


def parse_push(stdout: str) -> dict[str, Pushed]:
    """`git push --porcelain`'s lines per remote ref (pure)."""
    found = {}
    for line in stdout.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and len(parts[0]) == 1:
            _, _, to = parts[1].rpartition(":")
            found[to] = Pushed(to, parts[0], parts[2])
    return found


class Remote:
    """One remote of the person's repository (`name`, as in `origin`), reached by the
    trusted runner with the person's credentials."""

    def __init__(
        self,
        git: Git,
        name: str,
        timeout: float,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        if not valid_ref(f"refs/remotes/{name}") or "/" in name:
            raise ValidationFailed(f"{name!r} is not a remote's name")
        self.git = git
        self.name = name
        self.timeout = timeout
        source = os.environ if environ is None else environ
        self.env = {k: source[k] for k in PASSED if k in source}
        self.env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        self.env.update(
            {
                "GIT_DIR": str(git.repo.git_dir),
                "GIT_TERMINAL_PROMPT": "0",
                "LC_ALL": "C",
                "GIT_AUTHOR_NAME": "wvo-mcp",
                "GIT_AUTHOR_EMAIL": "wvo-mcp@localhost",
                "GIT_COMMITTER_NAME": "wvo-mcp",
                "GIT_COMMITTER_EMAIL": "wvo-mcp@localhost",
                "GIT_CONFIG_COUNT": str(len(OFF)),
            }
        )
        for n, (key, value) in enumerate(OFF):  # as config_env gives them, but only these
            self.env[f"GIT_CONFIG_KEY_{n}"] = key
            self.env[f"GIT_CONFIG_VALUE_{n}"] = value
        self.where = name  # until its URL is read
        self.url = self._url()
        self.where = identity(self.url)

    def _url(self) -> str:
        found = self._run(["ls-remote", "--get-url", self.name], network=False)
        url = found.stdout.strip()
        if found.returncode != 0 or not url or url == self.name:
            raise ValidationFailed(
                f"{self.git.repo.top} has no remote named {self.name!r}: add it with "
                f"`git remote add {self.name} URL`, or name a branch of an existing remote "
                "(`git remote -v` lists them)"
            )
        return url

    def _run(
        self, args: Sequence[str], *, network: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """git `args` as the person's git, off the terminal, killed with its children (ssh,
        a credential helper) after the timeout."""
        process = subprocess.Popen(
            ["git", *args], cwd=self.git.repo.top, env=self.env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
            start_new_session=True,  # no terminal to prompt on; one group to end
        )  # fmt: skip
        try:
            out, err = process.communicate(timeout=self.timeout if network else 60)
        except subprocess.TimeoutExpired:
            _end_group(process)
            raise Fault(
                "timeout",
                f"the remote {self.name} ({self.where}) did not answer within "
                f"{self.timeout:.0f} s (git {args[0]})",
            ) from None
        return subprocess.CompletedProcess(process.args, process.returncode, out, err)

    def _fault(self, args: Sequence[str], stderr: str) -> Fault:
        kind = fault_kind(stderr)
        said = redact(tail(stderr, 400)) or "no reason given"
        if kind == "auth":
            return Fault(
                kind,
                f"the remote {self.name} ({self.where}) refused the credentials git used "
                f"(git {args[0]}: {said}); fix the credential helper, ssh key or token your "
                "git uses for it",
            )
        if kind == "missing":
            return Fault(kind, f"the remote {self.name} has no such ref (git {args[0]}: {said})")
        return Fault(
            kind, f"the remote {self.name} ({self.where}) cannot be reached (git {args[0]}: "
            f"{said})",
        )  # fmt: skip

    def fetch(self, refspecs: Sequence[str]) -> None:
        """Fetch exactly `refspecs` (each `+src:dst` or `src:dst`)."""
        args = ["fetch", "--quiet", "--no-tags", "--no-prune", "--no-write-fetch-head",
                "--no-recurse-submodules", "--no-auto-gc", self.name, *refspecs]  # fmt: skip
        done = self._run(args)
        if done.returncode != 0:
            raise self._fault(args, done.stderr)

    def tracking(self, branch: str) -> str:
        """The local ref that holds the remote branch's tip as last fetched."""
        ref = f"refs/remotes/{self.name}/{branch}"
        if not valid_ref(ref):
            raise ValidationFailed(f"{branch!r} is not a valid branch name")
        return ref

    def fetch_branch(self, branch: str) -> str:
        """The remote branch's tip now, fetched into its tracking ref."""
        ref = self.tracking(branch)
        self.fetch([f"+refs/heads/{branch}:{ref}"])
        return self.git.output([], "rev-parse", "--verify", ref)

    def push(self, updates: Sequence[str], leases: Sequence[str] = ()) -> dict[str, Pushed]:
        """Push `updates` (`src:dst` refspecs, never forced), each ref in `leases`
        (`ref:expected`) moved only from its expected commit; what happened to each ref."""
        leased = [f"--force-with-lease={lease}" for lease in leases]
        args = ["push", "--porcelain", "--no-verify", "--no-recurse-submodules", *leased,
                self.name, *updates]  # fmt: skip
        done = self._run(args)
        found = parse_push(done.stdout)
        if not found:  # nothing reached a ref: the transport failed
            raise self._fault(args, done.stderr or done.stdout)
        return found

    def land(self, branch: str, new: str, old: str) -> bool:
        """Move the remote `branch` from `old` to `new` (which contains `old`): a
        compare-and-swap, never a forced overwrite. False: it is no longer at `old` (someone
        pushed); a push the remote refuses for another reason is a Fault."""
        ref = f"refs/heads/{branch}"
        if not self.git.contains(old, new):
            raise ValidationFailed(f"{new[:12]} does not contain {old[:12]}: not a landing")
        result = self.push([f"{new}:{ref}"], leases=[f"{ref}:{old}"]).get(ref)
        if result is not None and result.ok:
            self.git.set_ref(self.tracking(branch), new)
            return True
        if self.fetch_branch(branch) != old:
            return False  # moved: the caller stacks again on the new tip
        why = result.summary if result is not None else "no answer for the branch"
        raise Fault("refused", f"the remote {self.name} refused to move {branch}: {why}")

    def publish(self, task_id: str, commit: str) -> None:
        """The task's submitted commit where any host can fetch it."""
        ref = task_ref(task_id)
        result = self.push([f"+{commit}:{ref}"]).get(ref)
        if result is None or not result.ok:
            why = result.summary if result is not None else "no answer for the ref"
            raise Fault("refused", f"the remote {self.name} refused {ref}: {why}")

    def bring(self, task_id: str, branch: str) -> str | None:
        """The task's latest published commit, fetched onto its local `branch`; None when the
        remote has none."""
        try:
            self.fetch([f"+{task_ref(task_id)}:refs/heads/{branch}"])
        except Fault as exc:
            if exc.kind == "missing":
                return None
            raise
        return self.git.output([], "rev-parse", "--verify", f"refs/heads/{branch}")

    def forget(self, refs: Mapping[str, str]) -> None:
        """Delete each ref of `refs` from the remote, only while it still names its commit."""
        if refs:
            self.push([f":{ref}" for ref in refs], leases=[f"{r}:{c}" for r, c in refs.items()])

    def task_refs(self) -> dict[str, str]:
        """The autopilot's task refs on the remote, with their commits (for gc)."""
        args = ["ls-remote", "--refs", self.name, f"{TASK_REFS}/*"]
        done = self._run(args)
        if done.returncode != 0:
            raise self._fault(args, done.stderr)
        found = {}
        for line in done.stdout.splitlines():
            oid, _, ref = line.partition("\t")
            found[ref] = oid
        return found


def _end_group(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate()


def parse_onto(onto: str, remotes: Sequence[str]) -> tuple[str | None, str]:
    """--onto as git names it: `origin/main` is the branch main of the remote origin when
    the repository has a remote of that name; anything else is a local branch (pure)."""
    remote, _, branch = onto.partition("/")
    if branch and remote in remotes:
        return remote, branch
    return None, onto


def remotes(git: Git) -> list[str]:
    return git.output([], "remote").split()

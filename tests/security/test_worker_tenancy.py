"""An autopilot worker is a tenant (docs/security.md, "Autopilot workers are tenants"): the
fake worker (wvo_mcp/autopilot/fake.py) plays a hostile one with a shell and a run token, in
its real bwrap sandbox, under a real `wvo-mcp autopilot --until-empty`. What it reports of
its attempts is only a witness: each test then checks the host itself, the database rows,
the person's repository and home, the services it tried, the command lines it could have
left secrets in and the processes left. What it submits: test_worker_submissions.py."""

import contextlib
import json
import os
import re
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.autopilot.conftest import FAKE, autopilot, backlog, git, make_project
from tests.conftest import ROOT, open_db
from tests.security.tenancy import (
    digests,
    ours,
    person_repo,
    started,
    statuses,
    task_rows,
    trail,
    until,
    worktree,
)
from wvo_mcp.config import Settings
from wvo_mcp.edge import access, toolset
from wvo_mcp.edge.server import build_server
from wvo_mcp.sandbox import bwrap

pytestmark = pytest.mark.skipif(
    not bwrap.probe().usable, reason=f"no bwrap: {bwrap.probe().detail}"
)
RUN_TOKEN = re.compile(rb"wvo_[A-Za-z0-9_-]{40,}")
OPENAI_SECRET = "sk-secret-openai"


def found_planted(*roots: Path) -> list[Path]:
    """Files the probing worker made (fake.PLANTED), wherever they landed on the host."""
    return [p for root in roots for p in root.rglob("planted-by-a-worker")]


class Listener:
    """A service on the host a worker must not reach: a TCP port on 127.0.0.1 or an abstract
    Unix socket; it counts the connections it accepts."""

    def __init__(self, family: socket.AddressFamily, address: object) -> None:
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind(address)
        self.sock.listen(16)
        self.accepted = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(timeout=10)


def checked(listener: Listener, address: object, family: socket.AddressFamily) -> None:
    """A control: the listener does count (one connection of our own)."""
    with socket.socket(family, socket.SOCK_STREAM) as conn:
        conn.connect(address)
    deadline = time.monotonic() + 10
    while listener.accepted < 1:
        assert time.monotonic() < deadline, "the listener counts nothing"
        time.sleep(0.01)


def all_http_tools(tmp_path: Path) -> set[str]:
    """Every tool an HTTP server registers (what a token's role and scope select from)."""
    server = build_server(
        Settings(state_root=tmp_path / "unused-state", otel_enabled=False),
        http=access.HttpAccess(None),
    )

    async def names() -> set[str]:
        return {tool.name for tool in await server.list_tools()}

    return anyio.run(names)


def probe_reports(project: dict[str, Path], task_id: str) -> tuple[list[str], list[dict[str, Any]]]:
    """What the probing worker reported in its checkpoints: the tools it was shown, and each
    probe's outcome."""
    with open_db(project["state"]) as db:
        summaries = [r[0] for r in db.execute(
            "SELECT summary FROM checkpoints WHERE task_id = ? ORDER BY seq", (task_id,)
        )]  # fmt: skip
    listed = [json.loads(s.removeprefix("listed ")) for s in summaries if s.startswith("listed ")]
    found = [o for s in summaries if s.startswith("probe ") for o in json.loads(s[6:])]
    assert len(listed) == 1 and found, summaries
    return listed[0], found


# -- 0. a worker with a shell and a token --------------------------------------------------


def test_a_worker_reaches_nothing_of_the_host_and_no_other_task(tmp_path: Path) -> None:
    """From inside its sandbox a worker tries the database, the state folder, another task's
    repository, the person's repository and home, another provider's key, loopback services
    (directly and through its proxy), and the database with sqlite3; then, with its run
    token, every tool outside its scope and its own tools about other tasks. Every attempt
    fails, and the host shows it: the gated task's rows, the files, the services as they
    were."""
    project = make_project(tmp_path)
    repo, state = project["repo"], project["state"]
    home = tmp_path / "person-home"
    ssh_secret = f"ssh-secret-{uuid.uuid4().hex}"
    (home / ".ssh").mkdir(parents=True, mode=0o700)
    (home / ".ssh" / "id_ed25519").write_text(f"-----BEGIN KEY-----\n{ssh_secret}\n")
    service = Listener(socket.AF_INET, ("127.0.0.1", 0))
    port = service.sock.getsockname()[1]
    abstract = f"wvo-test-{uuid.uuid4().hex}"
    unix = Listener(socket.AF_UNIX, "\0" + abstract)
    checked(service, ("127.0.0.1", port), socket.AF_INET)
    checked(unix, "\0" + abstract, socket.AF_UNIX)

    db = state / "orchestrator.db"
    other = worktree(project, "O")
    a_person_object = next(p for p in (repo / ".git" / "objects").rglob("*") if p.is_file())
    venv_site = next(Path(sys.prefix).glob("lib/python*/site-packages"))
    spec = {
        # Files of the host, of the person and of the other task.
        "read": [
            str(db), f"{db}-wal", str(state / "runs" / "P" / "1.log"), str(other / "README.md"),
            str(other / ".git" / "HEAD"), str(other / ".git" / "config"), str(repo / "README.md"),
            str(repo / ".git" / "HEAD"), str(repo / ".git" / "config"),
            str(home / ".ssh" / "id_ed25519"), str(project["providers"]), "/etc/shadow",
            # Folders: a listing would say what is there.
            str(state), str(other), str(home / ".ssh"), str(repo / ".git" / "refs"),
        ],
        "write": [
            str(db), f"{db}-wal", str(state / "runs" / "P" / "1.log"), str(other / "README.md"),
            str(other / ".git" / "config"), str(repo / "README.md"), str(repo / ".git" / "config"),
            str(repo / ".git" / "HEAD"), str(a_person_object), str(home / ".ssh" / "id_ed25519"),
            str(project["providers"]), str(tmp_path / "bin" / "fake-claude"),
        ],
        # A new file where it would be trusted: hooks, the person's objects, the CLI's
        # installation, the Python the relay runs on, the wvo_mcp package.
        "create": [
            str(state), str(other), str(repo), str(repo / ".git" / "hooks"),
            str(repo / ".git" / "objects"), str(home / ".ssh"), str(tmp_path / "bin"),
            str(ROOT / "wvo_mcp"), str(venv_site),
        ],
        "remove": [
            str(a_person_object), str(tmp_path / "bin" / "fake-claude"), str(db),
            str(other / ".git" / "HEAD"),
        ],
        "secrets": [OPENAI_SECRET, ssh_secret],
        "tcp": [f"127.0.0.1:{port}", f"localhost:{port}", f"0.0.0.0:{port}"],
        "connect": [
            f"127.0.0.1:{port}", f"localhost:{port}", f"0.0.0.0:{port}", f"127.1:{port}",
            f"[::ffff:127.0.0.1]:{port}", f"2130706433:{port}",
        ],
        "unix": ["@" + abstract],
        "sqlite": {"path": str(db), "task": "G"},
        "other_task": "O",
        "gated_task": "G",
    }  # fmt: skip
    anyio.run(
        backlog,
        project,
        [
            {"id": "G", "title": "deploy, once a person approves", "requires_approval": True},
            {"id": "O", "title": "another tenant", "metadata": {"fake_wait": "go"}},
            {"id": "P", "title": "probes",
             "metadata": {"fake": "probe", "fake_wait": "go", "fake_probe": spec}},
        ],
    )  # fmt: skip
    gated_before = task_rows(project, "G")
    files_before = digests(home, tmp_path / "bin", project["providers"]) | person_repo(project)
    try:
        with started(project, HOME=str(home), OPENAI_API_KEY=OPENAI_SECRET) as pilot:
            # Both tenants run; the prober starts once the other's repository is there.
            until(pilot, "both workers waiting", lambda: all(
                (worktree(project, t) / "go.waiting").exists() for t in ("O", "P")
            ))  # fmt: skip
            (worktree(project, "P") / "go").write_text("")
            until(pilot, "P submitted", lambda: statuses(project)["P"] != "in_progress")
            (worktree(project, "O") / "go").write_text("")
            out = pilot.finish()
    finally:
        service.close()
        unix.close()
        planted = [str(p) for p in found_planted(tmp_path, home, ROOT / "wvo_mcp", venv_site)]
        for path in planted:
            Path(path).unlink()

    # What it reports: every attempt failed, each refusal says why. (A file created in a
    # folder may land in the sandbox's own /tmp, which holds the folders leading to what it
    # sees: whether it reached the host, the host says below.)
    listed, found = probe_reports(project, "P")
    worked = [o for o in found if o["ok"] and o["probe"] != "create"]
    assert worked == [], worked
    tools = {o["target"] for o in found if o["probe"] == "tool"}
    assert tools >= all_http_tools(tmp_path) - set(toolset.SCOPED["worker"]), tools
    for outcome in found:
        if outcome["probe"] == "tool":  # out of scope; another task; another name; gated
            said = outcome["said"]
            assert said.startswith(f"Error executing tool {outcome['target']}: "), outcome
            assert any(why in said for why in (
                "Nothing was changed", "cannot act as", "not yours to make"
            )), outcome  # fmt: skip
        if outcome["probe"] == "connect":  # refused, or not even understood
            status = outcome["said"].removeprefix("ConnectionRefusedError: HTTP/1.1 ")[:3]
            assert status in ("403", "400"), outcome
            if outcome["target"] in (f"127.0.0.1:{port}", f"localhost:{port}"):
                assert status == "403", outcome
    assert set(listed) == set(toolset.SCOPED["worker"])
    # The host: nothing reached, nothing changed, nothing planted, nothing left running.
    assert service.accepted == 1 and unix.accepted == 1  # our own control connections
    assert task_rows(project, "G") == gated_before
    assert digests(home, tmp_path / "bin", project["providers"]) | person_repo(project) == (
        files_before
    )
    assert planted == [], planted
    assert statuses(project) == {"G": "awaiting_approval", "O": "done", "P": "done"}, out
    prober = next(actor for actor, kind, _, _ in trail(project, "P") if kind == "claimed")
    assert [e for e in trail(project, "O") if e[0] == prober] == []
    assert "sandbox_run" not in {kind for _, kind, _, _ in trail(project, "P")}
    assert git(repo, "show", "wvo/P:P.txt").startswith("P by")
    assert ours(tmp_path) == []


def test_a_run_token_reads_no_other_task_through_a_resource(tmp_path: Path) -> None:
    """wvo://tasks/{id}, wvo://status and wvo://health are task_get, task_list and
    health_report by another door: a run token scoped to one task, refused those tools for
    any other task, reads none of them either."""
    project = make_project(tmp_path)
    spec = {"resources": ["wvo://tasks/G", "wvo://tasks/Q", "wvo://status", "wvo://health"]}
    anyio.run(
        backlog,
        project,
        [
            {"id": "G", "title": "deploy", "description": "the person's plan",
             "requires_approval": True},
            {"id": "R", "title": "reads", "metadata": {"fake": "probe", "fake_probe": spec}},
            {"id": "Q", "title": "later", "depends_on": ["R"]},
        ],
    )  # fmt: skip
    ran = autopilot(project)
    assert ran.returncode == 0, ran.stderr[-3000:]
    _, found = probe_reports(project, "R")
    read = {o["target"]: o["said"][:80] for o in found if o["probe"] == "resource" and o["ok"]}
    assert read == {}, f"a run token for R read other tasks' resources: {read}"


# -- 7. secrets never in argv --------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    cmdline: bytes
    cwd: str


def processes() -> dict[int, Seen]:
    """Every process's command line, as any local user reads it, and its working folder."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                cmdline = (entry / "cmdline").read_bytes()
                found[int(entry.name)] = Seen(cmdline, os.readlink(entry / "cwd"))
    return found


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> str | None:
    """None: SQLite in the state folder; else a PostgreSQL URL with a password in it (the
    throwaway cluster trusts loopback, so any password is accepted)."""
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("pg_migrated")("t")
    return url.replace("postgresql://wvo@", f"postgresql://wvo:pw-{uuid.uuid4().hex}@", 1)


def lease_tokens(project: dict[str, Path], url: str | None) -> list[str]:
    sql = "SELECT lease_token FROM tasks WHERE lease_token IS NOT NULL"
    if url is None:
        with open_db(project["state"]) as db:
            return [r[0] for r in db.execute(sql)]
    import psycopg

    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute(sql).fetchall()]


def leaks(seen: Seen, secrets: dict[str, bytes], tmp_path: Path) -> list[str]:
    """What of the secrets a command line holds, by name: this test's own, anywhere, and
    anything shaped like a run token in this test's processes (other tests on this machine
    run autopilots of their own)."""
    found = [name for name, secret in secrets.items() if secret in seen.cmdline]
    if str(tmp_path).encode() in seen.cmdline or seen.cwd.startswith(str(tmp_path)):
        found += [f"run token {m.group()[:8].decode()}…" for m in RUN_TOKEN.finditer(seen.cmdline)]
    return found


def test_no_secret_is_ever_in_a_command_line(tmp_path: Path, database: str | None) -> None:
    """While four workers run, no process's command line holds a run token, a lease token,
    a model API key or the database's password; and the scan saw the workers' own
    processes, so it could have."""
    project = make_project(tmp_path)
    url = {} if database is None else {"WVO_DATABASE_URL": database}
    ids = [f"S{i}" for i in range(4)]  # one per slot: all run at once
    tasks: list[dict[str, object]] = [
        {"id": t, "title": "waits to be scanned", "metadata": {"fake_wait": "scanned"}} for t in ids
    ]

    anyio.run(lambda: backlog(project, tasks, **url))
    key = f"sk-ant-{uuid.uuid4().hex}"
    with started(project, ANTHROPIC_API_KEY=key, **url) as pilot:
        until(pilot, "every worker waiting", lambda: all(
            (worktree(project, t) / "scanned.waiting").exists() for t in ids
        ))  # fmt: skip
        seen = processes()
        leases = lease_tokens(project, database)
        for t in ids:
            (worktree(project, t) / "scanned").write_text("")
        out = pilot.finish()
    assert "4 launched, 4 done" in out, out
    # The scan saw each worker's processes: the fake in its repository, and its sandbox.
    places = {str(worktree(project, t)) for t in ids}
    fakes = {p.cwd for p in seen.values() if str(FAKE).encode() in p.cmdline}
    sandbox = f"{bwrap.find()}\0".encode()
    sandboxes = {p.cwd for p in seen.values() if p.cmdline.startswith(sandbox)}
    assert fakes >= places and sandboxes >= places, (places, fakes, sandboxes)
    assert len(leases) == 4, leases
    secrets = {f"lease token {n}": lease.encode() for n, lease in enumerate(leases)}
    if database is not None:
        secrets["database password"] = database.split(":")[2].split("@")[0].encode()
    secrets["ANTHROPIC_API_KEY"] = key.encode()
    leaked = {
        pid: (found, p.cmdline.split(b"\0")[0].decode(errors="replace"), p.cwd)
        for pid, p in seen.items()
        if (found := leaks(p, secrets, tmp_path))
    }
    # Leases (in the prompt, on stdin) and the database's URL (never given to a worker).
    named = [name for found, _, _ in leaked.values() for name in found]
    assert [n for n in named if n.startswith(("lease", "database"))] == [], leaked
    # Run tokens (in the CLI's environment or its private home) and its model API key.
    assert leaked == {}, f"secrets in command lines: {leaked}"
    assert ours(tmp_path) == []

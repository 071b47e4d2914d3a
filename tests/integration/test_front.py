"""A cold server's first answers come from its own table while it imports (cli/front.py):
the table is what the server answers now, the answers come before the heavy imports are
done, and the session goes on as if the server had answered them itself."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.conftest import ROOT
from wvo_mcp.edge import handshake

pytestmark = pytest.mark.process
# Holds the import of the server until the test makes a file: what is answered before the
# file is made was answered without it (a server that waits for it a minute gives up).
GATE = """
import importlib.abc, os, sys, time

class Gate(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "wvo_mcp.edge.server":
            deadline = time.monotonic() + 60
            while not os.path.exists(os.environ["WVO_TEST_GATE"]):
                if time.monotonic() > deadline:
                    os._exit(97)  # nothing answered without the server: the front is off
                time.sleep(0.01)
        return None

sys.meta_path.insert(0, Gate())
"""
INITIALIZE = {"protocolVersion": "2025-06-18", "capabilities": {},
              "clientInfo": {"name": "front", "version": "1"}}  # fmt: skip


def test_the_table_is_what_the_server_answers() -> None:
    shipped = json.loads(handshake.TABLE.read_text())
    assert anyio.run(handshake.table) == shipped, (
        "data/handshake.json is stale: run `python -m wvo_mcp.edge.handshake` and commit it"
    )


class Raw:
    def __init__(self, tmp_path: Path, cwd: Path = ROOT, **env: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "wvo_mcp", "serve"], cwd=cwd,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={"PATH": os.environ["PATH"], "WVO_STATE_ROOT": str(tmp_path / "state"),
                 "WVO_WARM_START": "0", "WVO_OTEL_ENABLED": "0", **env},
        )  # fmt: skip

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()

    def line(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        found: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return found

    def close(self) -> str:
        assert self.proc.stdin is not None and self.proc.stderr is not None
        self.proc.stdin.close()
        self.proc.wait(30)
        assert self.proc.stdout is not None
        rest = self.proc.stdout.read()
        errors = self.proc.stderr.read().decode()
        self.proc.stdout.close()
        self.proc.stderr.close()
        assert rest == b"", rest  # no second answer to anything
        return errors


@pytest.mark.parametrize("profile", ["worker", "all"])
def test_the_first_answers_come_before_the_server_is_imported(tmp_path: Path, profile: str) -> None:
    gate = tmp_path / "gate"
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(GATE)
    server = Raw(tmp_path, WVO_TOOLS=profile, WVO_TEST_GATE=str(gate),
                 PYTHONPATH=str(tmp_path / "site"))  # fmt: skip
    table = json.loads(handshake.TABLE.read_text())
    try:
        server.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INITIALIZE})
        assert server.line() == {"jsonrpc": "2.0", "id": 1,
                                 "result": table["initialize"]["2025-06-18"]}  # fmt: skip
        server.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        server.send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        listed = server.line()
        assert listed["result"] == table["lists"][profile]["tools/list"]
        # The rest of what a client lists before its first call (Claude Code waits for all
        # of it): the prompts too, the directives found being the packaged ones.
        lists = ("prompts/list", "resources/list", "resources/templates/list")
        for n, method in enumerate(lists, 10):
            server.send({"jsonrpc": "2.0", "id": n, "method": method})
            assert server.line() == {"jsonrpc": "2.0", "id": n,
                                     "result": table["lists"][profile][method]}  # fmt: skip
        assert not gate.exists()  # all of it answered while the server could not import
        gate.touch()
        call = {"name": "claim_task", "arguments": {}}
        server.send({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": call})
        answer = server.line()
        assert answer["id"] == 3 and answer["result"]["structuredContent"]["claimed"] is False
        server.send({"jsonrpc": "2.0", "id": 4, "method": "ping"})
        assert server.line() == {"jsonrpc": "2.0", "id": 4, "result": {}}
    finally:
        errors = server.close()
    assert "Traceback" not in errors, errors


@pytest.mark.parametrize(
    ("asked", "env"),
    [
        ("2099-01-01", {}),  # a revision the table has not: the server negotiates
        ("2025-06-18", {"WVO_TOOLS": "worker,sandbox_run"}),  # a profile it has not
        ("2025-06-18", {"WVO_FRONT": "0"}),
    ],
    ids=["unknown revision", "unknown profile", "front off"],
)
def test_what_the_table_has_no_answer_for_the_server_answers(
    tmp_path: Path, asked: str, env: dict[str, str]
) -> None:
    server = Raw(tmp_path, **env)
    try:
        params = {**INITIALIZE, "protocolVersion": asked}
        server.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params})
        first = server.line()
        assert first["id"] == 1 and first["result"]["protocolVersion"] in ("2025-06-18",
                                                                          "2025-11-25")  # fmt: skip
        server.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        server.send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        names = {t["name"] for t in server.line()["result"]["tools"]}
        assert "claim_task" in names
    finally:
        server.close()


def test_a_persons_own_directives_are_listed_by_the_server(tmp_path: Path) -> None:
    """Prompts and resources include the directives a person keeps in the state folder: the
    table cannot know them, so the server lists them, once it has taken over."""
    (tmp_path / "state" / "directives").mkdir(parents=True)
    (tmp_path / "state" / "directives" / "release.md").write_text("# How we release\n\nTag.\n")
    server = Raw(tmp_path)
    try:
        server.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INITIALIZE})
        server.line()
        server.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        server.send({"jsonrpc": "2.0", "id": 2, "method": "prompts/list"})
        assert "release" in {p["name"] for p in server.line()["result"]["prompts"]}
    finally:
        server.close()


def test_a_projects_own_committed_directives_are_listed_by_the_server(tmp_path: Path) -> None:
    """A directive committed in the project's directives/ is a prompt the table does not
    have: the front hands the prompts over, and the server lists it."""
    project = tmp_path / "project"
    (project / "directives").mkdir(parents=True)
    (project / "directives" / "release.md").write_text("# How we release\n\nTag.\n")
    git = ["git", "-C", str(project), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "directives"], check=True)
    server = Raw(tmp_path, cwd=project)
    try:
        server.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INITIALIZE})
        server.line()
        server.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        server.send({"jsonrpc": "2.0", "id": 2, "method": "prompts/list"})
        names = {p["name"] for p in server.line()["result"]["prompts"]}
        assert {"release", "work_loop"} <= names, names
    finally:
        server.close()

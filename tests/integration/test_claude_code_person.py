"""A person's hand, through the real Claude Code CLI against a scripted model: what a person
says on a task is in the tool result the model reads; a pause makes the model checkpoint and
give the task back; a question waits for a person, and the answer reaches the model of the
next attempt with its claim."""

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CLI_TIMEOUT_SECONDS, ROOT, open_db, wvo
from tests.integration.test_claude_code import (
    ScriptedModel,
    _tool_results,
    _use,
    drive_claude,
    offers_ours,
    worker_server,
)

pytestmark = [pytest.mark.slow, pytest.mark.process]
PROMPT = "Work the wvo-mcp loop: take one task, heed what a person says, and finish it."
END = {"type": "text", "text": "Stopping here."}


def person(state_root: Path, *args: str) -> str:
    """A person at the host, in a process of its own (the model's server thread calls it)."""
    done = subprocess.run(
        [sys.executable, "-P", "-m", "wvo_mcp", "--state-root", str(state_root), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=CLI_TIMEOUT_SECONDS,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


class HeedingModel(ScriptedModel):
    """Claims a task; asks a person when `ask` is set and no answer came with the claim;
    otherwise lets `meanwhile` act (a person, between two of its calls), heartbeats, and
    heeds what comes back: a pause makes it checkpoint and give the task back, anything
    else it finishes with (its reason quotes what it heard)."""

    def __init__(self, meanwhile: Callable[[], None] = lambda: None, ask: str = "") -> None:
        super().__init__()
        self.meanwhile = meanwhile
        self.ask = ask
        self.decided: dict[int, dict[str, Any]] = {}  # one decision per point of the run

    def reply(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        if not offers_ours(body):
            return super().reply(body)
        with self.lock:
            self.requests.append(body)
        results = _tool_results(body.get("messages", []))
        n = len(results)
        if n not in self.decided:  # Claude Code may ask again at the same point
            self.decided[n] = self.decide(results)
        return [self.decided[n]]

    def decide(self, results: list[str]) -> dict[str, Any]:
        n = len(results)
        if n == 0:
            return _use("mcp__wvo__claim_task", {}, n=n)
        answers = [json.loads(r) for r in results]
        claim = answers[0]
        held = {"task_id": claim["task"]["id"], "lease_token": claim["lease_token"]}
        # The question asked (an agent's words), then what a person said.
        said = ("asked_by_an_agent", "from_a_person")
        heard = [note for a in answers for key in said for note in a.get(key, [])]
        last = answers[-1]
        if "previous_status" in last:  # moved (done, pending, or asked): the run ends
            return END
        if self.ask and not any(note["kind"] == "answer" for note in heard):
            if n == 1:
                return _use("mcp__wvo__checkpoint", {**held, "summary": "needs a choice"}, n=n)
            return _use("mcp__wvo__ask_person", {**held, "question": self.ask}, n=n)
        if n == 1 and not heard:
            self.meanwhile()
            return _use("mcp__wvo__heartbeat", held, n=n)
        if any(note["kind"] == "pause" for note in heard):
            if "seq" not in last:  # checkpoint first, then give it back
                return _use("mcp__wvo__checkpoint", {**held, "summary": "paused: stopping"}, n=n)
            return _use("mcp__wvo__plan_update", {**held, "status": "pending"}, n=n)
        said = "; ".join(f"{note['kind']}: {note['text']}" for note in heard)
        return _use("mcp__wvo__plan_update", {**held, "status": "done", "reason": said}, n=n)


def shown(model: ScriptedModel) -> str:
    """Every tool result the model was shown, as it read them."""
    main = [r for r in model.requests if offers_ours(r)]
    return "\n".join(_tool_results(main[-1]["messages"]))


def events(state_root: Path, task_id: str) -> list[tuple[str, str, str]]:
    with open_db(state_root) as db:
        rows = db.execute(
            "SELECT actor, kind, coalesce(reason, '') FROM task_events WHERE task_id = ? "
            "ORDER BY id",
            (task_id,),
        ).fetchall()
    return [tuple(r) for r in rows]


def one_task(state_root: Path, task_id: str) -> dict[str, Any]:
    """One task in the state folder; the .mcp.json of claude-1's stdio server on it."""
    roadmap = state_root.parent / "roadmap.yaml"
    roadmap.write_text(f"version: 1\ntasks:\n  - {{id: {task_id}, title: pick a licence}}\n")
    imported = wvo(state_root, "import", str(roadmap))
    assert imported.returncode == 0, imported.stderr
    return {"mcpServers": {"wvo": worker_server(state_root)}}


def test_a_told_message_is_in_the_tool_result_the_model_reads(
    state_root: Path, tmp_path: Path
) -> None:
    config = one_task(state_root, "T")
    model = HeedingModel(lambda: person(state_root, "tell", "--task", "T", "use the v2 API"))
    drive_claude(model, config, tmp_path, PROMPT)
    read = shown(model)
    assert '"from_a_person":[{"task_id":"T","kind":"tell","text":"use the v2 API"' in read, read
    assert ("claude-1", "status", "tell: use the v2 API") in events(state_root, "T")


def test_a_pause_makes_the_model_checkpoint_and_give_the_task_back(
    state_root: Path, tmp_path: Path
) -> None:
    config = one_task(state_root, "T")
    model = HeedingModel(lambda: person(state_root, "pause", "--task", "T", "--reason", "freeze"))
    drive_claude(model, config, tmp_path, PROMPT)
    assert '"kind":"pause"' in shown(model) and "freeze" in shown(model)
    with open_db(state_root) as db:
        status, attempts = db.execute("SELECT status, attempts FROM tasks").fetchone()
        [summary] = db.execute("SELECT summary FROM checkpoints").fetchone()
    assert (status, attempts, summary) == ("pending", 0, "paused: stopping")
    refused = wvo(state_root, "show", "T")
    assert json.loads(refused.stdout)["paused"].startswith("task 'T' is paused by person:")


def test_a_question_waits_and_its_answer_reaches_the_next_attempt(
    state_root: Path, tmp_path: Path
) -> None:
    config = one_task(state_root, "T")
    first = tmp_path / "first"
    first.mkdir()
    drive_claude(HeedingModel(ask="MIT or Apache-2.0?"), config, first, PROMPT)
    inbox = json.loads(wvo(state_root, "inbox", "--json").stdout)["questions"]
    assert [(q["task_id"], q["question"], q["asked_by"]) for q in inbox] == [
        ("T", "MIT or Apache-2.0?", "claude-1")
    ]
    assert "claimable again" in person(state_root, "answer", "T", "Apache-2.0")

    second = tmp_path / "second"
    second.mkdir()
    model = HeedingModel(ask="MIT or Apache-2.0?")
    drive_claude(model, config, second, PROMPT)
    main = [r for r in model.requests if offers_ours(r)]
    claim = json.loads(_tool_results(main[-1]["messages"])[0])
    # Only the person's words under from_a_person; the earlier holder's question apart.
    assert [(n["kind"], n["text"]) for n in claim["from_a_person"]] == [("answer", "Apache-2.0")]
    assert [(n["kind"], n["text"]) for n in claim["asked_by_an_agent"]] == [
        ("question", "MIT or Apache-2.0?")
    ]
    finished = events(state_root, "T")[-1]
    assert finished == ("claude-1", "status", "question: MIT or Apache-2.0?; answer: Apache-2.0")

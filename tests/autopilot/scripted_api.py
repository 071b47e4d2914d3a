"""One scripted model behind three vendors' wire formats on 127.0.0.1, for the real agents
the ACP tests drive: Anthropic's Messages (`/v1/messages`), OpenAI's Responses
(`/v1/responses`) and Gemini's `streamGenerateContent`, each streamed as its vendor streams
it. Every turn that offers our tools gets the next step of one task's work, worked out from
the tool results so far: checkpoint, a commit with the agent's own shell tool (which prints
its environment first), plan_update needs_review, then a last word. Each answer bills USAGE,
so a test can tell what a run was charged. A task titled STEERED is worked as `steered`
says: it waits for a person's words, thinking (its answer held) or in its shell, and heeds
each. A request that names no task (its prompt lost) gets a last word: the model cannot go
on.

Made with `cut=True`, its answer at the commit step streams its start and CUT_DELTAS deltas
of one byte, then holds until the client goes (`holding`, then `released`), and bills what
the API would: its input and the deltas it wrote. A steered model's thinking streams only
its start, and bills its input."""

import json
import re
import select
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.listening import serve_in_thread

USAGE = (1000, 20)  # input and output tokens each answer bills
CUT_DELTAS = 5
# Each agent's shell tool and the argument it takes the command in.
SHELLS = {
    "run_shell_command": "command",
    "Bash": "command",
    "exec_command": "cmd",
    "bash": "command",
}


# What a steered task's model waits for, in turn, how it knows each came, and where it waits:
# a person's words (tell) while it thinks, a redirect's new description while its shell
# runs, the autopilot's drain while it thinks.
STEERED = "steered"
STEERS = (("tell", "mind the cache", "thinking"), ("redirect", "now also mind the logs", "shell"),
          ("drain", "The autopilot running you is stopping", "thinking"))  # fmt: skip
LOST = "I cannot go on: no task is named here."
Call = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class Held:
    """Where an answer stops, held until its client goes, and what it then bills; `kind`:
    a steered model thinking, until it has that person's words."""

    bill: tuple[int, int]
    kind: str = ""


CUT = Held((USAGE[0], CUT_DELTAS))


def step(text: str, results: int, names: list[str]) -> Call | Held | str:
    """The next tool call (its name among `names`, and its arguments), or the last word."""
    found = re.search(r"task_id '([^']+)', lease_token '([^']+)'", text)
    if found is None:
        return LOST
    task_id, token = found.groups()
    held = {"task_id": task_id, "lease_token": token}
    if f"Title: {STEERED}" in text:
        return steered(text, held, names)
    if results == 0:
        return _named(names, "checkpoint"), {**held, "summary": "started", "progress": 10}
    if results == 1:
        shell = next(n for n in names if n in SHELLS)
        commit = (
            f"printenv; echo {task_id} > {task_id}.txt && git add -A && "
            f"git -c user.name=agent -c user.email=agent@localhost commit -qm {task_id}"
        )
        return shell, {SHELLS[shell]: commit}
    if results == 2:
        return _named(names, "plan_update"), {**held, "status": "needs_review"}
    return f"{task_id} is done."


def steered(text: str, held: dict[str, str], names: list[str]) -> Call | Held | str:
    """A steered task's next step, from what `text` (the whole request) shows was done: each
    step leaves a mark (`TASK@what`), in its call or in the checkpoint that lists every mark
    so far, so it goes on from either. It checkpoints, then waits for each of STEERS in turn
    and checkpoints when it has it (`TASK@heard-KIND`); told to stop (the drain), it stops.
    Then it commits, submits and ends."""
    task_id = held["task_id"]
    done = [m for m in ("started", *(f"heard-{k}" for k, _, _ in STEERS), "committed")
            if f"{task_id}@{m}" in text]  # fmt: skip

    def checkpoint(mark: str) -> tuple[str, dict[str, Any]]:
        summary = " ".join(f"{task_id}@{m}" for m in [*done, mark])
        return _named(names, "checkpoint"), {**held, "summary": summary}

    shell = next(n for n in names if n in SHELLS)
    for kind, words, _ in STEERS:
        if words in text and f"heard-{kind}" not in done:
            return checkpoint(f"heard-{kind}")
    if "heard-drain" in done and STEERS[2][1] in text:
        return "Checkpointed; stopping as the drain asks."
    if "started" not in done:
        return checkpoint("started")
    for kind, _, where in STEERS:
        if f"heard-{kind}" not in done:  # until a person's words cancel it
            if where == "thinking":
                return Held((USAGE[0], 0), kind)
            return shell, {SHELLS[shell]: f"touch {task_id}.waiting-{kind} && sleep 60"}
    if "committed" not in done:
        commit = (
            f"echo {task_id} > {task_id}.txt && git add {task_id}.txt && "
            f"git -c user.name=agent -c user.email=agent@localhost commit -qm {task_id}@committed"
        )
        return shell, {SHELLS[shell]: commit}
    if f"{task_id}@submitted" not in text:
        return _named(names, "plan_update"), {**held, "status": "needs_review",
                                              "reason": f"{task_id}@submitted"}  # fmt: skip
    return f"{task_id} is done."


def _named(names: list[str], tool: str) -> str:
    """The agent's name for one of our tools (mcp__wvo__checkpoint, wvo__checkpoint, …)."""
    return next(n for n in names if n == tool or re.search(rf"(^|_){tool}$", n))


class ScriptedApi:
    """The model, answering each format; `requests` keeps every request, by format."""

    def __init__(self, cut: bool = False) -> None:
        self.requests: dict[str, list[dict[str, Any]]] = {"anthropic": [], "openai": [],
                                                          "gemini": []}  # fmt: skip
        self.lock = threading.Lock()
        self.billed = [0, 0]  # input and output tokens, every answer's and the cut one's
        self.cut = cut  # the commit step's answer still to be cut
        self.cut_size = 0  # the cut answer's request, in bytes
        self.holding = threading.Event()  # the cut answer's client has its start
        self.released = threading.Event()  # its client went; its bill is in `billed`
        self.thinking: list[str] = []  # a steered model's held answers, by what each waits for
        self.server = _serve(self)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answered(self, api: str) -> int:
        """Answers that billed USAGE."""
        return len(self.requests[api])

    def held(self, said: Call | Held | str, streamed: bool = True) -> Held | None:
        """How this answer holds: a steered model's thinking, or the one to cut (the commit
        step's streamed, once); None, billed USAGE, when it does not."""
        if isinstance(said, Held):
            return said
        with self.lock:
            if not (self.cut and streamed) or isinstance(said, str) or said[0] not in SHELLS:
                self.billed = [self.billed[0] + USAGE[0], self.billed[1] + USAGE[1]]
                return None
            self.cut = False
            return CUT

    def anthropic(self, body: dict[str, Any]) -> Iterator[bytes | Held]:
        with self.lock:
            self.requests["anthropic"].append(body)
        names = [t.get("name", "") for t in body.get("tools", [])]
        results = sum(
            1
            for m in body.get("messages", [])
            if isinstance(m.get("content"), list)
            for b in m["content"]
            if b.get("type") == "tool_result"
        )
        ours = any(n.endswith("checkpoint") for n in names)
        said = step(json.dumps(body), results, names) if ours else "ok"
        message = {"id": f"msg_{results}", "type": "message", "role": "assistant",
                   "model": body.get("model"), "content": [], "stop_reason": None,
                   "stop_sequence": None,
                   "usage": {"input_tokens": USAGE[0], "output_tokens": 1}}  # fmt: skip
        hold = self.held(said)
        if hold is not None:
            delta = {"type": "content_block_delta", "index": 0,
                     "delta": {"type": "text_delta", "text": "a"}}  # fmt: skip
            yield _sse({"type": "message_start", "message": message})
            if not hold.kind:
                yield _sse({"type": "content_block_start", "index": 0,
                            "content_block": {"type": "text", "text": ""}})  # fmt: skip
                for _ in range(CUT_DELTAS):
                    yield _sse(delta)
            yield hold
            return
        assert not isinstance(said, Held)
        if isinstance(said, str):
            block = {"type": "text", "text": said}
            start, delta = {"type": "text", "text": ""}, {"type": "text_delta", "text": said}
        else:
            block = {"type": "tool_use", "id": f"toolu_{results:08d}", "name": said[0],
                     "input": said[1]}  # fmt: skip
            start = {**block, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(said[1])}
        stop = "tool_use" if block["type"] == "tool_use" else "end_turn"
        for event in (
            {"type": "message_start", "message": message},
            {"type": "content_block_start", "index": 0, "content_block": start},
            {"type": "content_block_delta", "index": 0, "delta": delta},
            {"type": "content_block_stop", "index": 0},
            {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
             "usage": {"output_tokens": USAGE[1]}},
            {"type": "message_stop"},
        ):  # fmt: skip
            yield _sse(event)

    def openai(self, body: dict[str, Any]) -> Iterator[bytes | Held]:
        with self.lock:
            self.requests["openai"].append(body)
        items = body.get("input", [])
        names, spaces = [], {}
        for tool in body.get("tools", []):
            for inner in tool.get("tools", []) or [tool]:
                names.append(inner.get("name", ""))
                if inner is not tool:
                    spaces[inner.get("name", "")] = tool.get("name")
        results = sum(1 for item in items if item.get("type") == "function_call_output")
        ours = "checkpoint" in names
        said = step(json.dumps(items), results, names) if ours else "ok"
        response = {"id": f"resp_{results}", "object": "response", "model": body.get("model")}
        hold = self.held(said)
        if hold is not None:
            added = {"type": "message", "id": "msg_cut", "role": "assistant",
                     "status": "in_progress", "content": []}  # fmt: skip
            yield _sse({"type": "response.created", "response": response})
            if not hold.kind:
                yield _sse({"type": "response.output_item.added", "output_index": 0,
                            "item": added})  # fmt: skip
                for _ in range(CUT_DELTAS):
                    yield _sse({"type": "response.output_text.delta", "item_id": "msg_cut",
                                "output_index": 0, "content_index": 0, "delta": "a"})  # fmt: skip
            yield hold
            return
        assert not isinstance(said, Held)
        if isinstance(said, str):
            item: dict[str, Any] = {
                "type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                "content": [{"type": "output_text", "text": said, "annotations": []}],
            }  # fmt: skip
        else:
            item = {"type": "function_call", "id": f"fc_{results}", "call_id": f"call_{results}",
                    "name": said[0], "arguments": json.dumps(said[1])}  # fmt: skip
            if said[0] in spaces:
                item["namespace"] = spaces[said[0]]
        usage = {"input_tokens": USAGE[0], "input_tokens_details": {"cached_tokens": 0},
                 "output_tokens": USAGE[1], "output_tokens_details": {"reasoning_tokens": 0},
                 "total_tokens": sum(USAGE)}  # fmt: skip
        for event in (
            {"type": "response.created", "response": response},
            {"type": "response.output_item.done", "output_index": 0, "item": item},
            {"type": "response.completed", "response": {**response, "usage": usage}},
        ):
            yield _sse(event)

    def gemini(self, body: dict[str, Any], stream: bool) -> Iterator[bytes | Held]:
        with self.lock:
            self.requests["gemini"].append(body)
        names = [
            d.get("name", "")
            for tool in body.get("tools", [])
            for d in tool.get("functionDeclarations", [])
        ]
        contents = body.get("contents", [])
        results = sum(
            1 for c in contents for part in c.get("parts", []) if "functionResponse" in part
        )
        ours = any(n.endswith("checkpoint") for n in names)
        said = step(json.dumps(contents), results, names) if ours else "{}"
        hold = self.held(said, stream)
        if hold is not None:
            text = {"content": {"role": "model", "parts": [{"text": "a"}]}, "index": 0}
            chunks: list[dict[str, Any]] = [  # each says its usage so far
                {"candidates": [text], "usageMetadata": {"promptTokenCount": USAGE[0],
                                                         "candidatesTokenCount": made}}
                for made in range(1, CUT_DELTAS + 1)
            ]  # fmt: skip
            if hold.kind:  # thinking: nothing said yet
                chunks = [{"usageMetadata": {"promptTokenCount": USAGE[0],
                                             "candidatesTokenCount": 0}}]  # fmt: skip
            for chunk in chunks:
                yield f"data: {json.dumps(chunk)}\n\n".encode()
            yield hold
            return
        assert not isinstance(said, Held)
        part = {"text": said} if isinstance(said, str) else {
            "functionCall": {"name": said[0], "args": said[1]}}  # fmt: skip
        chunk = {
            "candidates": [{"content": {"role": "model", "parts": [part]},
                            "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": USAGE[0], "candidatesTokenCount": USAGE[1],
                              "totalTokenCount": sum(USAGE)},
        }  # fmt: skip
        yield (f"data: {json.dumps(chunk)}\n\n" if stream else json.dumps(chunk)).encode()


def _sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


def _serve(api: ScriptedApi) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_HEAD(self) -> None:
            self._answer(200, "application/json", [b""])

        def do_POST(self) -> None:
            size = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(size))
            self.size = size
            path = self.path.split("?")[0]
            if path == "/v1/messages/count_tokens":
                self._answer(200, "application/json", [b'{"input_tokens": 10}'])
            elif path == "/v1/messages":
                self._answer(200, "text/event-stream", list(api.anthropic(body)))
            elif path == "/v1/responses":
                self._answer(200, "text/event-stream", list(api.openai(body)))
            elif path.endswith(":streamGenerateContent"):
                self._answer(200, "text/event-stream", list(api.gemini(body, True)))
            elif path.endswith(":generateContent"):
                self._answer(200, "application/json", list(api.gemini(body, False)))
            elif path.endswith(":countTokens"):
                self._answer(200, "application/json", [b'{"totalTokens": 10}'])
            else:
                self._answer(404, "application/json", [b"{}"])

        def _answer(self, status: int, kind: str, parts: list[bytes | Held]) -> None:
            if parts and isinstance(parts[-1], Held):
                self._hold(kind, [p for p in parts if isinstance(p, bytes)], parts[-1])
                return
            data = b"".join(p for p in parts if isinstance(p, bytes))
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _hold(self, kind: str, parts: list[bytes], held: Held) -> None:
            """The start of an answer, then nothing until the client goes; billed then."""
            self.close_connection = True
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"".join(parts))
            self.wfile.flush()
            with api.lock:
                if held.kind:
                    api.thinking.append(held.kind)
                else:
                    api.cut_size = self.size
                    api.holding.set()
            while True:
                readable, _, _ = select.select([self.connection], [], [], 1.0)
                try:
                    if readable and not self.connection.recv(1):
                        break
                except OSError:  # reset
                    break
            with api.lock:
                api.billed = [api.billed[0] + held.bill[0], api.billed[1] + held.bill[1]]
            if not held.kind:
                api.released.set()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    serve_in_thread(server)
    return server

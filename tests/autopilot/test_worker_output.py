"""Outcomes and usage read from workers' output: Claude Code's from lines recorded from the
real CLI (tests/autopilot/samples/claude, see its README), Codex's from its documented
events, and anything a hostile worker could print."""

import dataclasses
import json
from pathlib import Path

import pytest

from wvo_mcp.autopilot import isolation, worker_output
from wvo_mcp.autopilot.worker_output import ClaudeStream, CodexStream, Finish, PlainStream, classify
from wvo_mcp.rules import billing

SAMPLES = Path(__file__).parent / "samples"


def replay(stream: ClaudeStream, sample: Path, exit_code: int) -> Finish:
    for line in sample.read_text().splitlines():
        stream.feed(line)
    return stream.finish(exit_code)


@pytest.mark.parametrize(
    ("scenario", "exit_code", "outcome"),
    [
        ("success", 0, "success"),
        ("rate_limit", 1, "rate_limited"),
        ("auth", 1, "auth"),
        ("context_limit", 1, "context_limit"),
        ("overloaded", 1, "failure"),
        ("server_error", 1, "failure"),
    ],
)
def test_claude_code_outcomes_from_recorded_runs(
    scenario: str, exit_code: int, outcome: str
) -> None:
    finish = replay(ClaudeStream(), SAMPLES / "claude" / f"{scenario}.jsonl", exit_code)
    assert finish.outcome == outcome, finish
    if outcome != "success":
        assert finish.message and finish.usage.input_tokens == 0


def test_claude_code_usage_counts_cached_input_and_keeps_the_reported_cost() -> None:
    finish = replay(ClaudeStream(), SAMPLES / "claude" / "success.jsonl", 0)
    # input 1200 + cache creation 300 at 1.25 + cache reads 4000 at a tenth (rules/billing)
    assert (finish.usage.input_tokens, finish.usage.output_tokens) == (1975, 25)
    assert finish.usage.cost_usd == pytest.approx(0.0105)
    assert finish.message == "Hello from the scripted model."


def test_claude_code_permission_denials_name_the_tools() -> None:
    stream = ClaudeStream()
    stream.feed(
        '{"type":"result","subtype":"success","is_error":false,"result":"could not",'
        '"permission_denials":[{"tool_name":"Bash","tool_use_id":"t1","tool_input":{}},'
        '{"tool_name":"Bash"},{"tool_name":"WebFetch"},"junk"]}'
    )
    assert stream.finish(0).denied == ("Bash", "WebFetch")


def test_a_claude_run_without_a_result_line_failed() -> None:
    stream = ClaudeStream()
    stream.feed('{"type":"system","subtype":"init"}')
    finish = stream.finish(None)
    assert finish.outcome == "failure" and "no result line" in finish.message


@pytest.mark.parametrize(
    "line",
    ["not json", "[1,2]", '{"type":"result","usage":"lots","total_cost_usd":-5}', "\x00" * 10],
)
def test_hostile_lines_are_ignored_or_read_safely(line: str) -> None:
    stream = ClaudeStream()
    stream.feed(line)
    finish = stream.finish(0)
    assert finish.usage.cost_usd is None and finish.usage.input_tokens == 0


CODEX = json.loads((SAMPLES / "codex" / "manifest.json").read_text())["samples"]
CODEX_OUTCOME = {"rate_limit": "rate_limited", "auth": "auth"}


@pytest.mark.parametrize("name", sorted(CODEX))
def test_codex_outcomes_from_recorded_runs(name: str) -> None:
    sample = CODEX[name]
    stream = CodexStream()
    for line in (SAMPLES / "codex" / name).read_text().splitlines():
        stream.feed(line)
    finish = stream.finish(sample["exit_code"])
    assert finish.outcome == CODEX_OUTCOME.get(sample["outcome"], sample["outcome"]), finish


def test_codex_usage_is_the_threads_total_from_the_last_turn() -> None:
    stream = CodexStream()
    for line in (SAMPLES / "codex" / "success.jsonl").read_text().splitlines():
        stream.feed(line)
    finish = stream.finish(0)
    # The stub's three responses: 1200 + 1400 + 1700 input, 2304 of it cached (at a tenth),
    # 20 + 25 + 40 output.
    assert (finish.usage.input_tokens, finish.usage.output_tokens) == (4300 - 2304 + 230, 85)


@pytest.mark.parametrize(
    ("event", "outcome"),
    [
        (
            '{"type":"turn.failed","error":{"message":"exceeded retry limit, last status: 429"}}',
            "rate_limited",
        ),
        (
            '{"type":"error","message":"Your input exceeds the context window of this model"}',
            "context_limit",
        ),
        ('{"type":"turn.failed","error":{"message":"unexpected status 401 Unauthorized"}}', "auth"),
        ('{"type":"turn.failed","error":{"message":"stream disconnected"}}', "failure"),
    ],
)
def test_codex_failures_by_message(event: str, outcome: str) -> None:
    stream = CodexStream()
    stream.feed(event)
    assert stream.finish(1).outcome == outcome


def test_a_plain_cli_is_judged_by_exit_code_and_its_last_words() -> None:
    ok, bad = PlainStream(), PlainStream()
    ok.feed("all good")
    bad.feed("Error: rate limit reached, retry later")
    assert ok.finish(0).outcome == "success"
    assert bad.finish(2).outcome == "rate_limited"
    assert PlainStream().finish(3).message == "exit code 3"


def test_classify_leaves_unknown_messages_alone() -> None:
    assert classify("segmentation fault") is None
    assert classify("Prompt is too long · the request is ~250000 tokens") == "context_limit"


# -- tampering: lines a process the worker started wrote to its CLI's output ------------------


def result_line(is_error: bool, tokens: int, status: int | None = None, cost: float = 0) -> str:
    return json.dumps({
        "type": "result", "is_error": is_error, "api_error_status": status, "result": "said",
        "total_cost_usd": cost, "usage": {"input_tokens": tokens, "output_tokens": tokens},
    })  # fmt: skip


REAL_SUCCESS = result_line(False, 850_000, cost=3.3)
REAL_FAILURE = result_line(True, 40_000, cost=0.2)


@pytest.mark.parametrize(
    ("lines", "exit_code", "outcome"),
    [
        # a forged cheap success after the real one: the real figures stand
        ([REAL_SUCCESS, result_line(False, 1)], 0, "success"),
        # a forged 401 after a success: no later line undoes a success
        ([REAL_SUCCESS, result_line(True, 1, 401)], 0, "success"),
        # a forged 429 after a run that failed by itself: a plain failure, not blameless
        ([REAL_FAILURE, result_line(True, 1, 429)], 1, "failure"),
        # forged before the real one: the most said is charged, and no success is taken
        ([result_line(False, 1), REAL_FAILURE], 1, "failure"),
        ([result_line(True, 1, 401), REAL_SUCCESS], 0, "failure"),
    ],
)
def test_more_than_one_result_line_is_tampering(
    lines: list[str], exit_code: int, outcome: str
) -> None:
    stream = ClaudeStream()
    for line in lines:
        stream.feed(line)
    finish = stream.finish(exit_code)
    assert finish.outcome == outcome, finish
    most = max(json.loads(line)["usage"]["input_tokens"] for line in lines)
    assert (finish.usage.input_tokens, finish.usage.output_tokens) == (most, most)
    assert finish.usage.cost_usd == max(json.loads(line)["total_cost_usd"] for line in lines)
    if outcome == "failure":
        assert "held 2 result lines" in finish.message


def turn(kind: str, tokens: int = 0) -> str:
    if kind == "completed":
        return json.dumps({"type": "turn.completed",
                           "usage": {"input_tokens": tokens, "output_tokens": tokens}})  # fmt: skip
    return json.dumps({"type": "turn.failed", "error": {"message": "429 Too Many Requests"}})


@pytest.mark.parametrize(
    ("lines", "exit_code", "outcome"),
    [
        ([turn("completed", 900), turn("failed")], 0, "success"),  # no failure after success
        ([turn("completed", 900), turn("completed", 1)], 0, "success"),  # the most is kept
        ([turn("failed"), turn("failed")], 1, "failure"),  # a second end: not blameless
        ([turn("failed"), turn("completed", 900)], 0, "failure"),
        ([turn("failed")], 1, "rate_limited"),  # one end, as Codex writes it
    ],
)
def test_codex_turn_ends_after_the_first_are_tampering(
    lines: list[str], exit_code: int, outcome: str
) -> None:
    stream = CodexStream()
    for line in lines:
        stream.feed(line)
    finish = stream.finish(exit_code)
    assert finish.outcome == outcome, finish
    if any('"turn.completed"' in line for line in lines):
        assert finish.usage.input_tokens == 900


@pytest.mark.parametrize(
    ("lines", "code", "outcome", "message"),
    [
        (['{"type":"acp_end","stop_reason":"end_turn","paused":false,"message":"did it"}'],
         0, "success", "did it"),
        (['{"type":"acp_end","stop_reason":"cancelled","paused":true,"message":""}'],
         0, "success", "paused by a person"),
        (['{"type":"acp_end","stop_reason":"max_tokens","paused":false,"message":"cut"}'],
         1, "failure", "the agent's turn ended: max_tokens; cut"),
        (['{"type":"acp_end","error":"API Error: Request rejected (429) · rate limit"}'],
         1, "rate_limited", "API Error: Request rejected (429) · rate limit"),
        (['{"type":"acp","event":"message","text":"hi"}'], 1, "failure",
         "no acp_end line (exit code 1)"),
        (['{"type":"acp_end","stop_reason":"end_turn","message":"a"}'] * 2, 0, "failure",
         "its output held 2 acp_end lines"),
    ],
)  # fmt: skip
def test_an_acp_run_ends_as_its_driver_last_said(
    lines: list[str], code: int, outcome: str, message: str
) -> None:
    stream = worker_output.stream_for("acp")
    for line in lines:
        stream.feed(line)
    finish = stream.finish(code)
    assert finish.outcome == outcome and finish.message.startswith(message)
    assert finish.usage == worker_output.Usage() and not finish.said_usage  # it said none


def test_an_acp_agents_word_on_its_usage_is_its_drivers_sum() -> None:
    """Taken where no meter stands in front of its API; a meter's count, never lowered by
    it (isolation.metered)."""
    stream = worker_output.stream_for("acp")
    stream.feed('{"type":"acp_end","stop_reason":"end_turn","message":"m",'
                '"usage":{"input_tokens":1200,"output_tokens":-5}}')  # fmt: skip
    finish = stream.finish(0)
    assert finish.said_usage and finish.usage == worker_output.Usage(1200, 0)


def test_a_run_no_meter_stands_in_front_of_is_charged_its_word_or_the_ceiling() -> None:
    ready = isolation.Ready([], {}, Path("."), b"", unmetered_api=True)
    word = worker_output.Finish("success", worker_output.Usage(10, 2), said_usage=True)
    assert isolation.metered(ready, word).usage == worker_output.Usage(10, 2)
    # What a killed worker used is unknown.
    silent = worker_output.Finish("failure", worker_output.Usage(), "killed")
    ceiling = worker_output.Usage(billing.CEILING_INPUT, billing.CEILING_OUTPUT)
    assert isolation.metered(ready, silent).usage == ceiling
    refused = worker_output.Finish("auth", worker_output.Usage(), "login refused")  # billed nothing
    assert isolation.metered(ready, refused).usage == worker_output.Usage()
    no_api = dataclasses.replace(ready, unmetered_api=False)  # a command worker's: none known
    assert isolation.metered(no_api, silent).usage == worker_output.Usage()


def test_acp_lines_show_live_as_what_the_agent_plans_calls_asks_and_says() -> None:
    plan = {"type": "acp", "event": "plan", "entries": [
        {"content": "read", "status": "completed"}, {"content": "edit\nfile", "status":
        "in_progress"}, {"content": "test", "status": "pending"}]}  # fmt: skip
    assert worker_output.glimpse(json.dumps(plan)) == "[plan] 1/3 done; now: edit file"
    tool = {
        "type": "acp",
        "event": "tool",
        "id": "t1",
        "title": "Run pytest",
        "status": "completed",
    }
    assert worker_output.glimpse(json.dumps(tool)) == "[tool] Run pytest (completed)"
    asked = {"type": "acp", "event": "permission", "title": "write /etc/x"}
    asked["answer"] = "reject_once"
    assert worker_output.glimpse(json.dumps(asked)) == "[permission] write /etc/x: reject_once"
    end = {"type": "acp_end", "stop_reason": "end_turn", "message": "done T1"}
    assert worker_output.glimpse(json.dumps(end)) == "[end] end_turn: done T1"

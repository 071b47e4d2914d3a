"""A failed check's cause, told from its output: each with its own fix."""

import pytest

from wvo_mcp.rules.check_causes import cause, notes

TOOLS = "node_modules (found)"


def failed(code: int, stdout: str = "", stderr: str = "") -> str:
    return (
        f"`npm test`: exit {code} in 0.4 s (bwrap sandbox)\n--- stdout (tail) ---\n{stdout}"
        f"\n--- stderr (tail) ---\n{stderr}"
    )


@pytest.mark.parametrize(
    ("output", "kind"),
    [
        (failed(127, stderr="sh: 1: jest: not found"), "not_found"),
        (failed(127, stderr="bash: line 1: vitest: command not found"), "not_found"),
        (
            failed(1, stderr='npm error Missing script: "tset"\nnpm error\nnpm error Did you mean'),
            "missing_script",
        ),
        (failed(1, stderr='npm ERR! Missing script: "lint"'), "missing_script"),
        (
            failed(1, stderr="EROFS: read-only file system, mkdir '/r/node_modules/.cache'"),
            "read_only",
        ),
        (
            failed(
                1,
                stderr="Error: ENOENT: no such file or directory, mkdir "
                "'/r/node_modules/.cache/ava'",
            ),
            "read_only",
        ),
        (failed(1, stderr="touch: cannot touch '.venv/x': Read-only file system"), "read_only"),
        (failed(1, stdout="not ok 3 - adds\n# fail 1"), "failing"),
        (failed(2, stdout="FAILED tests/test_a.py::test_b - assert 1 == 2"), "failing"),
    ],
)
def test_each_cause_is_told_apart(output: str, kind: str) -> None:
    found = cause(output, TOOLS)
    assert found.kind == kind, found
    if kind == "not_found":
        assert "not on the sandbox's PATH" in found.fix and TOOLS in found.fix
    if kind == "failing":
        assert "If it passes by hand, the difference is the sandbox" in found.fix


def test_npms_log_path_in_the_sandbox_is_explained() -> None:
    output = failed(1, stderr="npm error A complete log of this run can be found in: "
                    "/tmp/home/.npm/_logs/2026-11-25T07_40_00_000Z-debug-0.log")  # fmt: skip
    said = notes(output)
    assert said and "gone with it" in said[0] and "--loglevel verbose" in said[0]
    assert notes(failed(1, stdout="plain")) == []

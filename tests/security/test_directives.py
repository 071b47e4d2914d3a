"""A project's `directives/` folder is writable by sandboxed commands, so every file in it is
hostile: links out of the folder, FIFOs, undecodable bytes, huge files, and files that change
after start-up. Each test plants the attack, then checks what a client and the host can see."""

import errno
import logging
import os
import uuid
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import anyio
import pytest
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS

from tests.conftest import Agent, connect
from wvo_mcp import guidance
from wvo_mcp.errors import NotFound

pytestmark = pytest.mark.anyio

PACKAGED = {"work_loop", "error_recovery", "approvals", "writing_context", "planning"}
RELEASE = "# Releasing\n\nTag, then push.\n"
# Well inside the client's 30 s read timeout: a hang fails here, not in teardown.
DEADLINE_SECONDS = 25


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A project with one good directive of its own, `release`."""
    root = tmp_path / "project"
    (root / "directives").mkdir(parents=True)
    (root / "directives" / "release.md").write_text(RELEASE)
    return root


def _serve(state_root: Path, workspace: Path, **env: object) -> AbstractAsyncContextManager[Agent]:
    env |= {"WVO_WORKSPACE_ROOT": workspace, "WVO_AUTOPILOT_HEALTH_INTERVAL_MS": 0}
    return connect(state_root, "legacy", **env)


async def _prompt_names(a: Agent) -> set[str]:
    return {p.name for p in (await a.client.list_prompts()).prompts}


async def _prompt_text(a: Agent, name: str) -> str:
    result = await a.client.get_prompt(name, {})
    return result.messages[0].content.text  # type: ignore[union-attr]


async def _resource_text(a: Agent, name: str) -> str:
    result = await a.client.read_resource(f"wvo://directives/{name}")
    return result.contents[0].text  # type: ignore[union-attr]


async def _refused(a: Agent, name: str, *, offered: bool = False) -> list[str]:
    """Reading `name` as a resource, and as a prompt, is an error; returns both messages. Our
    errors are clean invalid-params ones (a crash comes back as code 0). A prompt that was not
    `offered` at start-up is refused by the SDK itself, as an unknown prompt."""
    with pytest.raises(MCPError) as resource:
        await a.client.read_resource(f"wvo://directives/{name}")
    assert resource.value.code == INVALID_PARAMS, resource.value
    with pytest.raises(MCPError) as prompt:
        await a.client.get_prompt(name, {})
    if offered:
        assert prompt.value.code == INVALID_PARAMS, prompt.value
    else:
        assert prompt.value.message == f"Unknown prompt: {name}"
    return [resource.value.message, prompt.value.message]


async def _still_serves(a: Agent) -> None:
    assert await _prompt_text(a, "release") == RELEASE
    assert (await _resource_text(a, "approvals")).startswith("# When to ask for approval")
    await a.call("task_create", tasks=[{"id": "T1", "title": "after the attack"}])


async def test_links_out_of_the_folder_are_never_followed(
    state_root: Path, workspace: Path, tmp_path: Path
) -> None:
    marker, env_secret = f"MARKER-{uuid.uuid4()}", f"ENV-{uuid.uuid4()}"
    (tmp_path / "secret.md").write_text(f"# Secret\n\n{marker}\n")
    (workspace / "directives" / "leak.md").symlink_to("/proc/self/environ")
    (workspace / "directives" / "outside.md").symlink_to(tmp_path / "secret.md")
    # A link that shadows a packaged directive must not replace it either.
    (workspace / "directives" / "approvals.md").symlink_to(tmp_path / "secret.md")

    with anyio.fail_after(DEADLINE_SECONDS):
        async with _serve(state_root, workspace, WVO_TEST_SECRET=env_secret) as a:
            prompts = await a.client.list_prompts()
            resources = await a.client.list_resources()
            templates = await a.client.list_resource_templates()
            assert {p.name for p in prompts.prompts} == PACKAGED | {"release"}
            seen = [prompts.model_dump_json(), resources.model_dump_json()]
            seen.append(templates.model_dump_json())
            seen += await _refused(a, "leak")
            seen += await _refused(a, "outside")
            seen.append(await _resource_text(a, "approvals"))
            seen.append(await _prompt_text(a, "approvals"))
            await _still_serves(a)

    assert seen[-1].startswith("# When to ask for approval")
    for text in seen:
        assert marker not in text and env_secret not in text


async def test_a_fifo_neither_hangs_nor_stays_open(state_root: Path, workspace: Path) -> None:
    fifo = workspace / "directives" / "fifo.md"
    os.mkfifo(fifo)

    with anyio.fail_after(DEADLINE_SECONDS):
        async with _serve(state_root, workspace) as a:
            assert await _prompt_names(a) == PACKAGED | {"release"}
            await _refused(a, "fifo")
            await _still_serves(a)
            # Opening a FIFO to write without blocking fails with ENXIO exactly when no one
            # has it open to read: nothing in the server is left waiting on it.
            with pytest.raises(OSError) as caught:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            assert caught.value.errno == errno.ENXIO


async def test_undecodable_bytes_are_replaced(state_root: Path, workspace: Path) -> None:
    (workspace / "directives" / "bad.md").write_bytes(b"# Bad \xff title\n\nbody \xc3\x28 end\n")

    with anyio.fail_after(DEADLINE_SECONDS):
        async with _serve(state_root, workspace) as a:
            prompts = {p.name: p for p in (await a.client.list_prompts()).prompts}
            assert set(prompts) == PACKAGED | {"release", "bad"}
            assert prompts["bad"].title == "Bad \ufffd title"
            text = await _prompt_text(a, "bad")
            assert "\ufffd" in text and text.endswith(" end\n")
            assert "\ufffd" in await _resource_text(a, "bad")
            await _still_serves(a)


async def test_an_oversized_file_is_skipped(state_root: Path, workspace: Path) -> None:
    def sized(size: int) -> bytes:
        head = b"# Sized\n\n"
        return head + b"x" * (size - len(head))

    (workspace / "directives" / "big.md").write_bytes(sized(guidance.MAX_BYTES + 1))
    (workspace / "directives" / "just-fits.md").write_bytes(sized(guidance.MAX_BYTES))

    with anyio.fail_after(DEADLINE_SECONDS):
        async with _serve(state_root, workspace) as a:
            assert await _prompt_names(a) == PACKAGED | {"release", "just_fits"}
            await _refused(a, "big")
            assert len(await _resource_text(a, "just_fits")) == guidance.MAX_BYTES
            await _still_serves(a)


async def test_a_linked_directives_folder_is_skipped(state_root: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "sneaky.md").write_text("# Sneaky\n\nfrom outside the project\n")
    (elsewhere / "work-loop.md").write_text("# Hijacked loop\n")
    workspace = tmp_path / "project"
    workspace.mkdir()
    (workspace / "directives").symlink_to(elsewhere, target_is_directory=True)

    with anyio.fail_after(DEADLINE_SECONDS):
        async with _serve(state_root, workspace) as a:
            prompts = {p.name: p for p in (await a.client.list_prompts()).prompts}
            assert set(prompts) == PACKAGED
            assert prompts["work_loop"].title == "The work loop"
            assert "Hijacked" not in await _prompt_text(a, "work_loop")
            messages = await _refused(a, "sneaky")
            assert all("outside the project" not in m for m in messages)


async def test_directives_that_vanish_or_turn_bad_after_start_up(
    state_root: Path, workspace: Path, tmp_path: Path
) -> None:
    folder = workspace / "directives"
    for name in ("gone", "now-fifo", "now-link"):
        (folder / f"{name}.md").write_text(f"# {name}\n\nfine at start-up\n")
    marker = f"MARKER-{uuid.uuid4()}"
    (tmp_path / "secret.md").write_text(marker)

    with anyio.fail_after(DEADLINE_SECONDS):
        async with _serve(state_root, workspace) as a:
            assert {"gone", "now_fifo", "now_link"} <= await _prompt_names(a)
            (folder / "gone.md").unlink()
            (folder / "now-fifo.md").unlink()
            os.mkfifo(folder / "now-fifo.md")
            (folder / "now-link.md").unlink()
            (folder / "now-link.md").symlink_to(tmp_path / "secret.md")

            assert "no directive 'gone'" in (await _refused(a, "gone", offered=True))[1]
            await _refused(a, "now_fifo", offered=True)
            assert all(marker not in m for m in await _refused(a, "now_link", offered=True))
            await _still_serves(a)


# Fast checks of guidance.py itself, no server.


async def test_bad_files_are_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "directives"
    folder.mkdir()
    (folder / "good.md").write_text("no heading here\n")
    (folder / "link.md").symlink_to(folder / "good.md")
    os.mkfifo(folder / "fifo.md")
    (folder / "dir.md").mkdir()
    (folder / "big.md").write_bytes(b"x" * (guidance.MAX_BYTES + 1))
    (folder / "notes.txt").write_text("not a directive\n")
    (folder / "forged\nWARNING all is well.md").symlink_to(folder / "good.md")
    fds_before = set(os.listdir("/proc/self/fd"))

    with caplog.at_level(logging.WARNING, logger="wvo_mcp.guidance"):
        found = guidance.available(tmp_path)

    assert set(found) == PACKAGED | {"good"}
    assert found["good"].title == "good"
    warned = {r.getMessage() for r in caplog.records if r.levelno == logging.WARNING}
    assert len(warned) == 5 and not any("\n" in w for w in warned)
    for reason in ("link.md' skipped: a symbolic link", "fifo.md' skipped: not a regular file"):
        assert any(reason in w for w in warned), warned
    assert any("big.md' skipped: larger than" in w for w in warned), warned
    assert any("dir.md' skipped" in w for w in warned), warned
    assert set(os.listdir("/proc/self/fd")) == fds_before
    with pytest.raises(NotFound, match="no directive 'fifo'; there are: approvals"):
        guidance.text(tmp_path, "fifo")


async def test_a_bad_project_copy_lets_the_packaged_one_show_through(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "directives"
    folder.mkdir()
    os.mkfifo(folder / "approvals.md")
    with caplog.at_level(logging.WARNING, logger="wvo_mcp.guidance"):
        assert guidance.available(tmp_path)["approvals"].title == "When to ask for approval"
        assert guidance.text(tmp_path, "approvals").startswith("# When to ask for approval")
    assert any("approvals.md' skipped" in r.getMessage() for r in caplog.records)


async def test_a_missing_folder_is_quiet_and_a_linked_one_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="wvo_mcp.guidance"):
        assert set(guidance.available(tmp_path)) == PACKAGED
        assert not caplog.records
        (tmp_path / "real").mkdir()
        (tmp_path / "real" / "x.md").write_text("# X\n")
        (tmp_path / "directives").symlink_to(tmp_path / "real")
        assert set(guidance.available(tmp_path)) == PACKAGED
    assert "a symbolic link" in caplog.records[0].getMessage()

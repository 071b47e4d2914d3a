"""The merge queue's git (wvo_mcp/git/stacking.py): a taken commit stacked onto a target by a merge
commit or a rebase, the conflicts that stop it, the commits that touch conflicted files, and
the target branch put into a worker's new repository; on real repositories, including
conflicts a worker shaped to make us read or write outside the repository."""

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.gitwork import git, git_env, host_state, person
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.git import Conflict, Git, stacking, trees

LINES = "".join(f"line{n}\n" for n in range(1, 11))


class Link(bytes):
    """A symbolic link's target, as a file's content in commit()."""


def commit(host: Git, start: str, subject: str, files: Mapping[bytes, bytes | None]) -> str:
    """A commit on `start` with `files` written (None: removed), made with plain git on a
    detached HEAD; the person's main is checked out again after."""
    top = host.repo.top
    git(top, "checkout", "-q", "--detach", start)
    for name, content in files.items():
        path = os.path.join(os.fsencode(top), name)
        if content is None:
            git(top, "rm", "-q", "--", os.fsdecode(name))
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if os.path.lexists(path):
            os.unlink(path)
        if isinstance(content, Link):
            os.symlink(content, path)
        else:
            with open(path, "wb") as handle:
                handle.write(content)
        git(top, "add", "--", os.fsdecode(name))
    git(top, "commit", "-qm", subject)
    made = git(top, "rev-parse", "HEAD")
    git(top, "checkout", "-q", "main")
    return made


def edited(line: int, text: str) -> bytes:
    """LINES with line `line` (1-based) replaced by `text`."""
    lines = LINES.splitlines()
    lines[line - 1] = text
    return ("\n".join(lines) + "\n").encode()


def parents(host: Git, made: str) -> list[str]:
    return git(host.repo.top, "rev-list", "--parents", "-n1", made).split()[1:]


def show(host: Git, made: str, path: str) -> str:
    return git(host.repo.top, "show", f"{made}:{path}")


def worktrees(host: Git) -> list[str]:
    listed = git(host.repo.top, "worktree", "list", "--porcelain")
    return [line for line in listed.splitlines() if line.startswith("worktree ")]


@pytest.fixture
def host(tmp_path: Path) -> Git:
    return person(tmp_path / "person")


@pytest.fixture
def base(host: Git) -> str:
    """main with a.txt, the fork point of every branch below."""
    made = commit(host, host.head(), "lines", {b"a.txt": LINES.encode()})
    git(host.repo.top, "update-ref", "refs/heads/main", made)
    git(host.repo.top, "reset", "-q", "--hard", "main")
    return made


# -- merge_onto ----------------------------------------------------------------------------


def test_merge_onto_makes_a_merge_commit_of_both_changes(host: Git, base: str) -> None:
    onto = commit(host, base, "main edits line 2", {b"a.txt": edited(2, "main")})
    tip = commit(host, base, "worker adds b", {b"b.txt": b"worker\n"})
    before = host_state(host)[0], git(host.repo.top, "status", "--porcelain")
    made = stacking.merge_onto(host, onto, tip, "Land T1\n\nwvo-mcp merge queue")
    assert isinstance(made, str)
    assert parents(host, made) == [onto, tip]
    assert show(host, made, "a.txt") == edited(2, "main").decode().strip()
    assert show(host, made, "b.txt") == "worker"
    assert git(host.repo.top, "log", "-1", "--format=%B", made) == "Land T1\n\nwvo-mcp merge queue"
    assert host.tree_of(made) == git(host.repo.top, "rev-parse", f"{made}^{{tree}}")
    # Objects only: no ref moved, the person's work tree and index as they were.
    assert (host_state(host)[0], git(host.repo.top, "status", "--porcelain")) == before


def test_merge_onto_a_conflict_gives_files_and_hunks_with_line_numbers(
    host: Git, base: str
) -> None:
    onto = commit(host, base, "main", {b"a.txt": edited(5, "main five")})
    tip = commit(host, base, "worker", {b"a.txt": edited(5, "worker five"), b"c.txt": b"c\n"})
    refs = host_state(host)[0]
    found = stacking.merge_onto(host, onto, tip, "m")
    assert isinstance(found, Conflict)
    assert found.files == ["a.txt"]
    lines = found.hunks.splitlines()
    assert lines[0] == "--- a.txt"
    # Three lines of context before the region, which starts on line 5.
    assert lines[1] == "@@ line 2"
    assert lines[2:5] == ["line2", "line3", "line4"]
    assert lines[5].startswith("<<<<<<< ")
    assert lines[6:9] == ["main five", "=======", "worker five"]
    assert lines[9].startswith(">>>>>>> ")
    assert lines[10:] == ["line6", "line7", "line8"]
    assert host_state(host)[0] == refs


def test_merge_onto_a_branch_that_already_merged_the_target(host: Git, base: str) -> None:
    onto = commit(host, base, "main", {b"a.txt": edited(5, "main five")})
    mine = commit(host, base, "worker", {b"a.txt": edited(5, "worker five")})
    assert isinstance(stacking.merge_onto(host, onto, mine, "m"), Conflict)
    # The worker brings the target in and resolves the conflict, as a returned entry is told.
    top = host.repo.top
    git(top, "checkout", "-q", "--detach", mine)
    merging = subprocess.run(
        ["git", "merge", "-q", onto], cwd=top, capture_output=True, env=git_env(top), check=False
    )
    assert merging.returncode == 1  # the conflict, left for the worker to resolve
    (top / "a.txt").write_bytes(edited(5, "both five"))
    git(top, "add", "a.txt")
    git(top, "-c", "core.editor=true", "commit", "-q", "--no-edit")
    resolved = git(top, "rev-parse", "HEAD")
    git(top, "checkout", "-q", "main")
    assert isinstance(stacking.merge_onto(host, onto, resolved, "m"), str)
    # The target moved on meanwhile: still clean, and both changes are there.
    later = commit(host, onto, "main again", {b"d.txt": b"d\n"})
    made = stacking.merge_onto(host, later, resolved, "m")
    assert isinstance(made, str)
    assert parents(host, made) == [later, resolved]
    assert show(host, made, "a.txt") == edited(5, "both five").decode().strip()
    assert show(host, made, "d.txt") == "d"
    # Rebased, its history would replay into the conflict it resolved: it lands as one
    # commit on top of the target, with the worker's resolution.
    squashed = stacking.rebase_onto(host, later, resolved, "Land T1")
    assert isinstance(squashed, str)
    assert parents(host, squashed) == [later]
    assert show(host, squashed, "a.txt") == edited(5, "both five").decode().strip()
    assert git(top, "log", "-1", "--format=%s", squashed) == "Land T1"


def test_merge_onto_refuses_what_is_not_a_commit_id(host: Git, base: str) -> None:
    with pytest.raises(ValidationFailed, match="hex object id"):
        stacking.merge_onto(host, "main", base, "m")
    with pytest.raises(ValidationFailed, match="not a commit"):
        stacking.merge_onto(host, base, host.tree_of(base), "m")


def test_hunks_are_bounded_in_files_and_characters(host: Git, base: str) -> None:
    def conflict(many: int, pad: str) -> Conflict:
        names = [f"f{n:02}.txt".encode() for n in range(many)]
        onto = commit(host, base, "main", {name: f"{pad}main\n".encode() for name in names})
        tip = commit(host, base, "worker", {name: f"{pad}worker\n".encode() for name in names})
        found = stacking.merge_onto(host, onto, tip, "m")
        assert isinstance(found, Conflict)
        assert found.files == [name.decode() for name in names]
        return found

    few = conflict(stacking.HUNK_FILES + 5, "")
    assert not few.hunks.endswith("[... cut]")
    assert f"--- f{stacking.HUNK_FILES - 1:02}.txt\n@@ line 1\n" in few.hunks
    assert f"--- f{stacking.HUNK_FILES:02}.txt" not in few.hunks
    assert few.hunks.count("<<<<<<<") == stacking.HUNK_FILES
    big = conflict(5, "x" * (stacking.HUNK_CHARS // 4) + "\n")
    assert big.hunks.endswith("\n[... cut]")
    assert len(big.hunks) == stacking.HUNK_CHARS + len("\n[... cut]")
    assert "--- f00.txt" in big.hunks


# -- rebase_onto ---------------------------------------------------------------------------


def test_rebase_onto_replays_the_commits_linearly(host: Git, base: str) -> None:
    onto = commit(host, base, "main edits line 2", {b"a.txt": edited(2, "main")})
    one = commit(host, base, "worker one", {b"b.txt": b"one\n"})
    two = commit(host, one, "worker two", {b"a.txt": edited(9, "worker")})
    refs = host_state(host)[0]
    made = stacking.rebase_onto(host, onto, two, "m")
    assert isinstance(made, str)
    top = host.repo.top
    assert git(top, "log", "--format=%s", f"{onto}..{made}").splitlines() == [
        "worker two",
        "worker one",
    ]
    assert git(top, "rev-list", "--min-parents=2", f"{onto}..{made}") == ""
    assert parents(host, parents(host, made)[0]) == [onto]
    assert show(host, made, "a.txt") == (
        edited(2, "main").decode().replace("line9", "worker").strip()
    )
    assert show(host, made, "b.txt") == "one"
    # The scratch worktree is gone; no branch or ref of the person's moved.
    assert len(worktrees(host)) == 1
    assert host_state(host)[0] == refs
    assert git(top, "status", "--porcelain") == ""


def test_rebase_onto_a_conflict_gives_files_and_hunks(host: Git, base: str) -> None:
    onto = commit(host, base, "main", {b"a.txt": edited(5, "main five"),
                                       b"my notes.txt": b"main\n"})  # fmt: skip
    tip = commit(host, base, "worker", {b"a.txt": edited(5, "worker five"),
                                        b"my notes.txt": b"worker\n"})  # fmt: skip
    refs = host_state(host)[0]
    found = stacking.rebase_onto(host, onto, tip, "m")
    assert isinstance(found, Conflict)
    assert sorted(found.files) == ["a.txt", "my notes.txt"]
    assert "--- a.txt\n@@ line 2\n" in found.hunks
    assert "main five\n=======\nworker five\n>>>>>>> " in found.hunks
    assert len(worktrees(host)) == 1
    assert host_state(host)[0] == refs
    assert git(host.repo.top, "status", "--porcelain") == ""


# -- what changes nothing lands no commit --------------------------------------------------


def empty_commit(host: Git, start: str, subject: str) -> str:
    top = host.repo.top
    git(top, "checkout", "-q", "--detach", start)
    git(top, "commit", "-q", "--allow-empty", "-m", subject)
    made = git(top, "rev-parse", "HEAD")
    git(top, "checkout", "-q", "main")
    return made


def test_a_submission_that_changes_nothing_makes_no_commit(host: Git, base: str) -> None:
    onto = commit(host, base, "main edits line 2", {b"a.txt": edited(2, "main")})
    # No commit at all (the worker's start); the same change as the target's; a change and
    # its revert; an empty commit.
    same = commit(host, base, "worker makes main's change", {b"a.txt": edited(2, "main")})
    change = commit(host, base, "worker adds b", {b"b.txt": b"b\n"})
    undone = commit(host, change, "worker removes b", {b"b.txt": None})
    empty = empty_commit(host, base, "nothing")
    refs = host_state(host)[0]
    for tip in (base, same, undone, empty):
        assert stacking.merge_onto(host, onto, tip, "m") == onto, tip
        assert stacking.rebase_onto(host, onto, tip, "m") == onto, tip
    assert host_state(host)[0] == refs and len(worktrees(host)) == 1


def test_a_rebase_drops_an_empty_commit_among_real_ones(host: Git, base: str) -> None:
    onto = commit(host, base, "main edits line 2", {b"a.txt": edited(2, "main")})
    empty = empty_commit(host, base, "nothing")
    tip = commit(host, empty, "worker adds b", {b"b.txt": b"b\n"})
    made = stacking.rebase_onto(host, onto, tip, "m")
    assert isinstance(made, str)
    assert git(host.repo.top, "log", "--format=%s", f"{onto}..{made}") == "worker adds b"


# -- touching, merge_base ------------------------------------------------------------------


def test_touching_lists_only_the_commits_that_change_the_files(host: Git, base: str) -> None:
    before = commit(host, base, "before", {b"a.txt": edited(1, "before")})
    c1 = commit(host, before, "c1", {b"a.txt": edited(1, "c1")})
    c2 = commit(host, c1, "c2", {b"b.txt": b"b\n"})
    c3 = commit(host, c2, "c3", {b"a.txt": edited(1, "c3"), b"sp ace.txt": b"s\n"})
    c4 = commit(host, c3, "c4", {b"*.txt": b"star\n"})
    c5 = commit(host, c4, "c5", {b"b.txt": None})
    assert host.touching(before, c5, ["a.txt"]) == [c3, c1]
    assert host.touching(before, c5, ["b.txt"]) == [c5, c2]
    assert host.touching(before, c5, ["sp ace.txt", "b.txt"]) == [c5, c3, c2]
    # Literal paths: a name with glob characters is that name, not a pattern.
    assert host.touching(before, c5, ["*.txt"]) == [c4]
    assert host.touching(before, c5, ["nothing.txt"]) == []
    assert host.touching(before, c5, []) == []
    assert host.touching(c5, c5, ["a.txt"]) == []
    assert host.merge_base(c5, base) == base
    side = commit(host, before, "side", {b"e.txt": b"e\n"})
    assert host.merge_base(side, c5) == before


def test_conflict_regions_with_context_and_line_numbers() -> None:
    text = "\n".join(
        ["a", "<<<<<<< ours", "x", "=======", "y", ">>>>>>> theirs"]
        + [f"m{n}" for n in range(1, 9)]
        + ["<<<<<<< ours", "p", "=======", "q", ">>>>>>> theirs", "z1", "z2", "z3"]
        + ["<<<<<<< never closed", "r"]
    )
    assert stacking.conflict_regions(text, context=2).splitlines() == [
        "@@ line 1",  # the context is cut at the top of the file
        "a", "<<<<<<< ours", "x", "=======", "y", ">>>>>>> theirs", "m1", "m2",
        "@@ line 13",
        "m7", "m8", "<<<<<<< ours", "p", "=======", "q", ">>>>>>> theirs", "z1", "z2",
    ]  # fmt: skip
    assert stacking.conflict_regions("no conflict\n") == ""
    assert stacking.conflict_regions(">>>>>>> stray\n=======\n") == ""


# -- clone_for_worker(also=...) ------------------------------------------------------------


def test_clone_for_worker_adds_the_target_branch(host: Git, base: str, tmp_path: Path) -> None:
    target = commit(host, base, "main moved", {b"b.txt": b"b\n"})
    dest = tmp_path / "w"
    trees.clone_for_worker(host, dest, base, "wvo/T1", also={"main": target})
    assert git(dest, "symbolic-ref", "HEAD") == "refs/heads/wvo/T1"
    assert git(dest, "rev-parse", "HEAD") == base
    assert git(dest, "rev-parse", "refs/heads/main") == target
    assert git(dest, "status", "--porcelain") == ""
    assert not (dest / "b.txt").exists()  # only HEAD is checked out
    # The worker can bring the target in, as a returned conflict asks it to.
    git(dest, "merge", "-q", "--no-edit", "main")
    assert (dest / "b.txt").read_text() == "b\n"


def test_clone_for_worker_skips_an_invalid_or_clashing_name_in_also(
    host: Git, base: str, tmp_path: Path
) -> None:
    target = commit(host, base, "main moved", {b"b.txt": b"b\n"})
    dest = tmp_path / "w"
    also = {"a..b": target, "bad name": target, "x.lock": target, "wvo/T1": target, "main": target}
    trees.clone_for_worker(host, dest, base, "wvo/T1", also=also)
    refs = git(dest, "for-each-ref", "--format=%(refname) %(objectname)").splitlines()
    # The worker's own branch is never moved by `also`; invalid names are left out.
    assert sorted(refs) == [f"refs/heads/main {target}", f"refs/heads/wvo/T1 {base}"]
    assert git(dest, "rev-parse", "HEAD") == base


def test_clone_for_worker_refuses_a_target_that_is_not_a_commit(
    host: Git, base: str, tmp_path: Path
) -> None:
    with pytest.raises(ValidationFailed, match="hex object id"):
        trees.clone_for_worker(host, tmp_path / "w", base, "wvo/T1", also={"main": "main"})
    assert not (tmp_path / "w").exists()
    with pytest.raises(ValidationFailed, match="not a commit"):
        trees.clone_for_worker(
            host, tmp_path / "w", base, "wvo/T1", also={"main": host.tree_of(base)}
        )
    assert not (tmp_path / "w").exists()
    # A name git cannot have next to the worker's branch (refs/heads/wvo is its folder).
    with pytest.raises(ValidationFailed, match="update-ref"):
        trees.clone_for_worker(host, tmp_path / "w", base, "wvo/T1", also={"wvo": base})
    assert not (tmp_path / "w").exists()

"""Git.move_branch (wvo_mcp/git/run.py) onto a branch that a working tree has checked out: the
tree follows the branch as `git push` with receive.denyCurrentBranch=updateInstead would bring
it, only while nothing in it would be lost; on real repositories."""

import os
from pathlib import Path

import pytest

from tests.gitwork import git, person
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.git import Blocked, Git


@pytest.fixture
def host(tmp_path: Path) -> Git:
    return person(tmp_path / "person")


def landed(host: Git, files: dict[str, str]) -> tuple[str, str]:
    """(old, new): main's tip, and a commit on it adding `files`, made as the lander makes
    one (objects only: the working tree and index do not see it)."""
    top = host.repo.top
    old = host.tip("main")
    scratch = top.parent / "scratch"
    git(top, "worktree", "add", "-q", "--detach", str(scratch), old)
    for name, text in files.items():
        (scratch / name).parent.mkdir(parents=True, exist_ok=True)
        (scratch / name).write_text(text)
    git(scratch, "add", "-A")
    git(scratch, "commit", "-qm", "landed")
    new = git(scratch, "rev-parse", "HEAD")
    git(top, "worktree", "remove", "--force", str(scratch))
    return old, new


def test_a_clean_checked_out_branch_moves_with_its_files(host: Git) -> None:
    top = host.repo.top
    (top / "mine.txt").write_text("untracked, not in the landing\n")
    old, new = landed(host, {"src/new.py": "print('landed')\n", "app.py": "print('v2')\n"})
    assert host.move_branch("main", new, old)
    assert git(top, "rev-parse", "HEAD") == new
    assert (top / "src" / "new.py").read_text() == "print('landed')\n"
    assert (top / "app.py").read_text() == "print('v2')\n"
    assert git(top, "status", "--porcelain") == "?? mine.txt"


@pytest.mark.parametrize("staged", [False, True])
def test_changes_nobody_committed_hold_the_branch_and_stay(host: Git, staged: bool) -> None:
    top = host.repo.top
    old, new = landed(host, {"src/new.py": "x\n"})
    (top / "tool.sh").write_text("#!/bin/sh\necho draft\n")
    if staged:
        git(top, "add", "tool.sh")
    before = git(top, "status", "--porcelain")
    with pytest.raises(Blocked, match=r"changes nobody committed \(tool.sh\)"):
        host.move_branch("main", new, old)
    assert host.tip("main") == old
    assert git(top, "status", "--porcelain") == before
    assert (top / "tool.sh").read_text() == "#!/bin/sh\necho draft\n"
    assert not (top / "src").exists()


def test_an_untracked_file_the_landing_would_overwrite_holds_the_branch(
    host: Git,
) -> None:
    top = host.repo.top
    old, new = landed(host, {"notes.txt": "landed notes\n"})
    (top / "notes.txt").write_text("the person's own notes\n")
    with pytest.raises(Blocked, match=r"notes\.txt"):
        host.move_branch("main", new, old)
    assert host.tip("main") == old
    assert (top / "notes.txt").read_text() == "the person's own notes\n"
    assert git(top, "status", "--porcelain") == "?? notes.txt"


def test_a_branch_moved_meanwhile_is_not_moved_and_its_files_stay(host: Git) -> None:
    top = host.repo.top
    old, new = landed(host, {"src/new.py": "x\n"})
    (top / "app.py").write_text("print('person')\n")
    git(top, "commit", "-qam", "a person's commit")
    mine = host.tip("main")
    assert not host.move_branch("main", new, old)
    assert host.tip("main") == mine and not (top / "src").exists()
    assert git(top, "status", "--porcelain") == ""


def test_a_linked_worktree_that_has_the_branch_follows_it(host: Git) -> None:
    top = host.repo.top
    git(top, "branch", "integration")
    linked = top.parent / "linked"
    git(top, "worktree", "add", "-q", str(linked), "integration")
    old = host.tip("integration")
    _, new = landed(host, {"b.txt": "b\n"})
    assert host.move_branch("integration", new, old)
    assert (linked / "b.txt").read_text() == "b\n" and not (top / "b.txt").exists()
    assert git(linked, "status", "--porcelain") == ""
    assert host.tip("main") == old  # the person's own checkout is left alone


def test_the_persons_filters_and_hooks_do_not_run(host: Git) -> None:
    """The landing's files come in as blobs, as everywhere the autopilot runs git on the
    person's repository: no smudge filter, no checkout hook."""
    top = host.repo.top
    old, new = landed(host, {".gitattributes": "* filter=evil\n", "c.txt": "c\n"})
    marker = top.parent / "ran"
    git(top, "config", "filter.evil.smudge", f"touch {marker}; cat")
    for name in ("post-checkout", "reference-transaction", "post-index-change"):
        hook = host.common_dir / "hooks" / name
        hook.parent.mkdir(exist_ok=True)
        hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
        os.chmod(hook, 0o755)
    assert host.move_branch("main", new, old)
    assert (top / "c.txt").read_text() == "c\n" and not marker.exists()


def test_asking_for_a_trees_changes_writes_nothing_a_persons_git_would_meet(host: Git) -> None:
    """A landing waiting on a checkout asks git whether it is clean, again and again. That
    writes nothing there: git's status refreshes a stale index under index.lock, and the
    person's own `git checkout` at that moment would fail on it."""
    top = host.repo.top
    index = top / ".git" / "index"
    later = os.stat(index).st_mtime_ns + 10**10
    os.utime(top / "app.py", ns=(later, later))  # the same bytes, newer: the index is stale
    before = os.stat(index)
    assert host.worktree_changes(top) == []
    assert os.stat(index).st_ino == before.st_ino
    git(top, "status", "--porcelain")  # the control: git's own status does rewrite it
    assert os.stat(index).st_ino != before.st_ino


def test_only_a_commits_own_id_is_taken_for_a_commit(host: Git) -> None:
    """checked_commit, checked_commits and tree_of: a tag that peels to a commit, a tree, a
    blob or a missing object is refused, naming the one at fault; a commit gives its tree."""
    top = host.repo.top
    commit = host.tip("main")
    tree = git(top, "rev-parse", f"{commit}^{{tree}}")
    git(top, "tag", "-a", "-m", "a tag", "v1", commit)
    tag = git(top, "rev-parse", "refs/tags/v1")
    blob = git(top, "rev-parse", f"{commit}:app.py")
    missing = "0" * 40
    assert host.checked_commit(commit, "tip") == commit
    assert host.tree_of(commit) == tree
    host.checked_commits((commit, "target"), (commit, "tip"))
    for other in (tag, tree, blob, missing):
        with pytest.raises(ValidationFailed, match=f"tip {other} is not a commit"):
            host.checked_commit(other, "tip")
        with pytest.raises(ValidationFailed, match=f"commit {other} is not a commit"):
            host.tree_of(other)
        with pytest.raises(ValidationFailed, match=f"tip {other} is not a commit"):
            host.checked_commits((commit, "target"), (other, "tip"))
    with pytest.raises(ValidationFailed, match="must be a 40-digit lower-case hex object id"):
        host.tree_of("HEAD")

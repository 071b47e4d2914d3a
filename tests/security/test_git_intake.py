"""A worker owns its repository (clone_for_worker) and everything in it: HEAD, refs, config,
hooks, alternates, object files, the trees it commits. The autopilot reads HEAD as data
(read_head), copies object files as data and lets index-pack --strict judge them
(take_commits), and writes trees out as raw files (materialize). Each attack here is refused
or comes to nothing, and the person's repository (refs and object files), the files outside
and the destination folder are as they were."""

import os
import subprocess
from pathlib import Path

import pytest

from tests.gitwork import (
    blob,
    commit_file,
    commit_tree,
    git,
    git_env,
    has_object,
    host_state,
    person,
    raw_tree,
    worker,
)
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.git import Git, intake, read_head, snapshots, trees

REF = "refs/heads/wvo/T1"


@pytest.fixture
def host(tmp_path: Path) -> Git:
    return person(tmp_path / "person")


# -- read_head ------------------------------------------------------------------------------


def test_head_a_link_to_a_file_outside_is_not_read(host: Git, tmp_path: Path) -> None:
    w = worker(host, tmp_path / "w")
    tip = commit_file(w, "a", "a\n")
    head = w / ".git" / "HEAD"
    head.unlink()
    head.symlink_to("/etc/passwd")
    assert read_head(w / ".git") is None
    # Even a link to a file holding a perfectly good id.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text(tip + "\n")
    head.unlink()
    head.symlink_to(elsewhere)
    assert read_head(w / ".git") is None


@pytest.mark.parametrize(
    "content",
    [
        "ref: refs/heads/../../../../etc/passwd\n",
        "ref: refs/heads/../HEAD\n",
        "ref: refs/tags/v1\n",
        "ref: refs/heads/wvo/T1.lock\n",
        "ref: refs/heads/\n",
        "ref: /etc/passwd\n",
        "ref:  refs/heads/wvo/T1\n",
        "ref: refs/heads/wvo/T1\nref: refs/heads/main\n",
        "gitdir: ../../person/.git\n",
        "0" * 39 + "\n",
        "",
    ],
)
def test_head_naming_anything_but_a_plain_branch_or_id_is_refused(
    host: Git, tmp_path: Path, content: str
) -> None:
    w = worker(host, tmp_path / "w")
    commit_file(w, "a", "a\n")
    (w / ".git" / "HEAD").write_text(content)
    assert read_head(w / ".git") is None


def test_refs_are_resolved_once_and_never_through_links(host: Git, tmp_path: Path) -> None:
    w = worker(host, tmp_path / "w")
    tip = commit_file(w, "a", "a\n")
    loose = w / ".git" / "refs" / "heads" / "wvo" / "T1"
    # A second hop: the branch file is itself a symbolic ref.
    loose.write_text("ref: refs/heads/main\n")
    git(w, "update-ref", "refs/heads/main", tip)
    assert read_head(w / ".git") is None
    # A link to a file outside that holds an id.
    (tmp_path / "planted").write_text(tip + "\n")
    loose.unlink()
    loose.symlink_to(tmp_path / "planted")
    assert read_head(w / ".git") is None
    # A folder on the way swapped for a link to another repository's refs.
    loose.unlink()
    (w / ".git" / "refs" / "heads" / "wvo").rmdir()
    (w / ".git" / "refs" / "heads" / "wvo").symlink_to(tmp_path / "person" / ".git" / "refs")
    assert read_head(w / ".git") is None
    # A FIFO where HEAD should be: refused at once, never waited on.
    (w / ".git" / "HEAD").unlink()
    os.mkfifo(w / ".git" / "HEAD")
    assert read_head(w / ".git") is None


def test_a_git_folder_that_is_a_link_or_a_gitdir_file_is_not_followed(
    host: Git, tmp_path: Path
) -> None:
    w = worker(host, tmp_path / "w")
    commit_file(w, "a", "a\n")
    (w / ".git").rename(tmp_path / "moved")
    (w / ".git").symlink_to(host.repo.git_dir)
    assert read_head(w / ".git") is None
    (w / ".git").unlink()
    (w / ".git").write_text(f"gitdir: {tmp_path / 'moved'}\n")
    assert read_head(w / ".git") is None


def test_oversized_head_and_packed_refs_are_not_read(host: Git, tmp_path: Path) -> None:
    w = worker(host, tmp_path / "w")
    tip = commit_file(w, "a", "a\n")
    git(w, "pack-refs", "--all")
    assert read_head(w / ".git") == tip
    packed = w / ".git" / "packed-refs"
    with packed.open("a") as out:
        out.write("# padding\n" * (4 * 1024 * 1024))
    assert read_head(w / ".git") is None
    (w / ".git" / "HEAD").write_text("ref: refs/heads/wvo/T1" + " " * 5000 + "\n")
    assert read_head(w / ".git") is None


# -- take_commits ---------------------------------------------------------------------------


def secret_repo(tmp_path: Path) -> tuple[Path, str]:
    """Another private repository on the machine, with a secret blob."""
    private = tmp_path / "private"
    private.mkdir()
    git(private, "init", "-q")
    return private, blob(private, b"the private key\n")


def test_objects_named_through_the_worker_alternates_are_not_taken(
    host: Git, tmp_path: Path
) -> None:
    private, secret = secret_repo(tmp_path)
    w = worker(host, tmp_path / "w")
    alternates = w / ".git" / "objects" / "info" / "alternates"
    with alternates.open("a") as out:
        out.write(f"{private / '.git' / 'objects'}\n")
    # The worker knows the secret's id and commits a tree that holds it.
    tree = raw_tree(w, [("100644", b"stolen", secret)])
    tip = commit_tree(w, tree, git(w, "rev-parse", "HEAD"))
    git(w, "update-ref", "HEAD", tip)
    assert read_head(w / ".git") == tip
    before = host_state(host)
    with pytest.raises(ValidationFailed, match="could not pack"):
        intake.take_commits(host, w / ".git" / "objects", tip, REF, None)
    assert not has_object(host.repo.top, secret)
    assert not has_object(host.repo.top, tip)
    assert host_state(host) == before


def test_object_files_that_are_links_are_not_copied(host: Git, tmp_path: Path) -> None:
    private, secret = secret_repo(tmp_path)
    w = worker(host, tmp_path / "w")
    tree = raw_tree(w, [("100644", b"stolen", secret)])
    tip = commit_tree(w, tree, git(w, "rev-parse", "HEAD"))
    # The secret's loose object file, linked into the worker's store.
    source = private / ".git" / "objects" / secret[:2] / secret[2:]
    (w / ".git" / "objects" / secret[:2]).mkdir(exist_ok=True)
    (w / ".git" / "objects" / secret[:2] / secret[2:]).symlink_to(source)
    before = host_state(host)
    with pytest.raises(ValidationFailed, match="could not pack"):
        intake.take_commits(host, w / ".git" / "objects", tip, REF, None)
    assert not has_object(host.repo.top, secret)
    assert host_state(host) == before
    # The whole object folder swapped for a link to the private one.
    objects = w / ".git" / "objects"
    objects.rename(w / ".git" / "objects.real")
    objects.symlink_to(private / ".git" / "objects")
    with pytest.raises(ValidationFailed, match="symbolic links"):
        intake.take_commits(host, objects, tip, REF, None)
    assert not has_object(host.repo.top, secret)
    assert host_state(host) == before


def test_what_the_worker_plants_in_its_repository_never_runs(host: Git, tmp_path: Path) -> None:
    marker = tmp_path / "RAN"
    w = worker(host, tmp_path / "w")
    run = f"touch {marker}; cat"
    for key, value in (
        ("core.fsmonitor", f"touch {marker}"),
        ("core.hooksPath", str(w / ".git" / "hooks")),
        ("filter.evil.clean", run),
        ("filter.evil.smudge", run),
        ("diff.evil.textconv", run),
        ("diff.evil.command", f"touch {marker}"),
        ("merge.evil.driver", f"touch {marker}"),
        ("core.alternateRefsCommand", f"touch {marker}"),
        ("uploadpack.packObjectsHook", f"touch {marker}"),
    ):
        git(w, "config", key, value)
    hooks = w / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    for hook in ("pre-commit", "post-checkout", "reference-transaction", "post-index-change",
                 "pre-auto-gc", "post-rewrite"):  # fmt: skip
        (hooks / hook).write_text(f"#!/bin/sh\ntouch {marker}\n")
        (hooks / hook).chmod(0o755)
    (w / ".gitattributes").write_text("* filter=evil diff=evil merge=evil\n")
    (w / "a").write_text("a\n")
    # The worker's commit carries the attributes; plain git in the worker runs the plant.
    env = {**git_env(w), "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "core.hooksPath",
           "GIT_CONFIG_VALUE_0": os.devnull}  # fmt: skip
    for step in (["add", "-A"], ["commit", "-qm", "plant"]):
        subprocess.run(["git", *step], cwd=w, env=env, check=True, capture_output=True)
    assert marker.exists(), "control: the plant is armed"
    marker.unlink()
    tip = read_head(w / ".git")
    assert tip is not None
    base = host.head()
    assert intake.take_commits(host, w / ".git" / "objects", tip, REF, None)
    out = tmp_path / "out"
    out.mkdir()
    trees.materialize(host, tip, out)
    assert host.diff(base, "wvo/T1")
    assert snapshots.snapshot_diff(host, base, tip, 10**6)[0]
    trees.clone_for_worker(host, tmp_path / "w2", tip, "wvo/T1")
    assert (tmp_path / "w2" / "a").read_text() == "a\n"
    assert not marker.exists()


def test_trees_with_git_or_dot_dot_entries_are_refused_by_index_pack(
    host: Git, tmp_path: Path
) -> None:
    w = worker(host, tmp_path / "w")
    payload = blob(w, b"[core]\n\tfsmonitor = touch /tmp/owned\n")
    for name in (b".git", b".GIT", b"..", b".", b"a/b", b""):
        inner = raw_tree(w, [("100644", b"config", payload)])
        tree = raw_tree(w, [("40000", name, inner)])
        tip = commit_tree(w, tree, git(w, "rev-parse", "HEAD"))
        before = host_state(host)
        # An empty name does not even parse, so pack-objects stops first.
        refused = "could not pack" if name == b"" else "index-pack --strict refused"
        with pytest.raises(ValidationFailed, match=refused):
            intake.take_commits(host, w / ".git" / "objects", tip, REF, None)
        assert not has_object(host.repo.top, tip), name
        assert host_state(host) == before


def test_a_ref_that_moved_is_not_overwritten(host: Git, tmp_path: Path) -> None:
    w = worker(host, tmp_path / "w")
    first = commit_file(w, "a", "1\n")
    intake.take_commits(host, w / ".git" / "objects", first, REF, None)
    second = commit_file(w, "a", "2\n")
    # Someone else moved the branch meanwhile.
    other = git(host.repo.top, "commit-tree", f"{first}^{{tree}}", "-p", first, "-m", "other")
    git(host.repo.top, "update-ref", REF, other)
    before = host_state(host)
    with pytest.raises(ValidationFailed, match="moved"):
        intake.take_commits(host, w / ".git" / "objects", second, REF, first)
    with pytest.raises(ValidationFailed, match="moved"):
        intake.take_commits(host, w / ".git" / "objects", second, REF, None)
    assert host_state(host) == before


def test_a_ref_moved_while_the_objects_were_taken_is_not_overwritten(
    host: Git, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compare-and-swap itself: the ref moves after the first check."""
    w = worker(host, tmp_path / "w")
    tip = commit_file(w, "a", "1\n")
    base = host.head()
    install = intake._install_pack

    def racing(into: Git, incoming: Path, name: str) -> None:
        install(into, incoming, name)
        git(into.repo.top, "update-ref", REF, base)

    monkeypatch.setattr(intake, "_install_pack", racing)
    with pytest.raises(ValidationFailed, match="moved"):
        intake.take_commits(host, w / ".git" / "objects", tip, REF, None)
    assert host.tip("wvo/T1") == base


def test_intake_limits_and_bad_arguments(host: Git, tmp_path: Path) -> None:
    w = worker(host, tmp_path / "w")
    (w / "big").write_bytes(os.urandom(200_000))
    git(w, "add", "big")
    git(w, "commit", "-qm", "big")
    tip = git(w, "rev-parse", "HEAD")
    objects = w / ".git" / "objects"
    before = host_state(host)
    with pytest.raises(ValidationFailed, match="intake limit"):
        intake.take_commits(host, objects, tip, REF, None, max_bytes=100_000)
    for bad_tip, ref in ((tip[:39], REF), (tip.upper(), REF), ("HEAD", REF),
                         (tip, "wvo/T1"), (tip, "refs/heads/a..b")):  # fmt: skip
        with pytest.raises(ValidationFailed):
            intake.take_commits(host, objects, bad_tip, ref, None)
    with pytest.raises(ValidationFailed, match="absolute"):
        intake.take_commits(host, Path("w/.git/objects"), tip, REF, None)
    # A tip that is a tree, not a commit.
    tree = git(w, "rev-parse", "HEAD^{tree}")
    with pytest.raises(ValidationFailed, match="not a commit"):
        intake.take_commits(host, objects, tree, REF, None)
    assert host_state(host) == before


# -- materialize ----------------------------------------------------------------------------


def test_a_link_written_earlier_cannot_redirect_a_later_write(host: Git, tmp_path: Path) -> None:
    top = host.repo.top
    outside = tmp_path / "outside"
    outside.mkdir()
    inner = raw_tree(top, [("100644", b"x", blob(top, b"planted\n"))])
    for link in (str(outside).encode(), b"/etc", b"../outside"):
        # `a` is first a link, then a folder holding x: a duplicate entry no git writes.
        tree = raw_tree(top, [("120000", b"a", blob(top, link)), ("40000", b"a", inner)])
        dest = tmp_path / "dest"
        dest.mkdir()
        with pytest.raises(ValidationFailed, match=r"'a/x'.*link or a file earlier"):
            trees.materialize(host, commit_tree(top, tree), dest)
        assert list(dest.iterdir()) == []
        assert list(outside.iterdir()) == []
        dest.rmdir()
    # A file, then a folder of the same name; a file written twice.
    dest = tmp_path / "dest"
    dest.mkdir()
    for entries in (
        [("100644", b"a", blob(top, b"f\n")), ("40000", b"a", inner)],
        [("100644", b"a", blob(top, b"1\n")), ("100644", b"a", blob(top, b"2\n"))],
    ):
        with pytest.raises(ValidationFailed, match="'a"):
            trees.materialize(host, commit_tree(top, raw_tree(top, entries)), dest)
        assert list(dest.iterdir()) == []


@pytest.mark.parametrize(
    "path",
    [[b".git", b"config"], [b".GIT", b"hooks"], [b".."], [b"..", b"x"], [b"."],
     [b"a/../../x"], [b"/etc/x"], [b"ok", b".git"], [b".git. "]],
)  # fmt: skip
def test_paths_that_could_escape_or_reach_a_git_folder_are_refused(
    host: Git, tmp_path: Path, path: list[bytes]
) -> None:
    top = host.repo.top
    entry = raw_tree(top, [("100644", path[-1], blob(top, b"payload\n"))])
    for name in reversed(path[:-1]):
        entry = raw_tree(top, [("40000", name, entry)])
    commit = commit_tree(top, entry)
    dest = tmp_path / "sub" / "dest"
    dest.mkdir(parents=True)
    with pytest.raises(ValidationFailed, match=r"unsafe path|\.git entry"):
        trees.materialize(host, commit, dest)
    assert list(dest.iterdir()) == []
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["dest"]


def test_materialize_limits(host: Git, tmp_path: Path) -> None:
    top = host.repo.top
    tree = raw_tree(top, [("100644", f"f{n}".encode(), blob(top, b"x" * 1000)) for n in range(5)])
    commit = commit_tree(top, tree)
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(ValidationFailed, match="over 4 files"):
        trees.materialize(host, commit, dest, max_files=4)
    assert list(dest.iterdir()) == []
    with pytest.raises(ValidationFailed, match="over 3500 bytes"):
        trees.materialize(host, commit, dest, max_bytes=3500)
    assert list(dest.iterdir()) == []
    with pytest.raises(ValidationFailed, match="not a commit"):
        trees.materialize(host, tree, dest)
    link = tmp_path / "link"
    link.symlink_to(dest)
    with pytest.raises(ValidationFailed, match="symbolic links"):
        trees.materialize(host, commit, link)
    trees.materialize(host, commit, dest)
    assert len(list(dest.iterdir())) == 5

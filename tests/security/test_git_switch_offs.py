"""The trusted git calls (wvo_mcp/git/) run no driver the repository's configuration
names, whatever the name: a driver name may hold any byte git allows in a subsection (all but
NUL and newline), '=' included, which a `-c name=` switch-off would have split. Every
filter (clean, smudge, process), diff (textconv, command) and merge driver here would leave a
marker file; .gitattributes selects each of them; every Git method that touches the index or
the working tree runs; no marker appears. A control run of plain git in a twin repository
shows the same drivers do run when nothing switches them off."""

import os
import subprocess
from pathlib import Path

import pytest

from tests.gitwork import git_env
from wvo_mcp.git import Git, config_env, locate, snapshots

# Bytes that end an attribute value in .gitattributes (attr.c): names holding them are
# configured (git must still parse the switch-offs) but cannot be selected.
UNSELECTABLE = {ord(" "), ord("\t"), ord("\r")}
SUBSECTION_BYTES = [b for b in range(1, 256) if b != ord("\n")]
EXTRA_NAMES = [b"x=y", b"x.clean=y", b"a=b.clean", b"==", b'q"q', b"s\\s", b"-c", b"x" * 300]


def git(cwd: Path, *args: str | bytes, check: bool = True) -> str:
    """Plain git for setting up and for the control: nothing switched off."""
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, env=git_env(cwd), check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(f"git {args!r}: {done.stderr.decode(errors='replace')}")
    return done.stdout.decode(errors="replace").strip()


def names() -> list[bytes]:
    """One driver name per subsection byte, and names built to split a `-c`."""
    return [b"n" + bytes([b]) + b"n" for b in SUBSECTION_BYTES] + EXTRA_NAMES


def selectable(name: bytes) -> bool:
    return not any(b in UNSELECTABLE for b in name)


def armed_repo(root: Path, marks: Path) -> Path:
    """A repository on `main` with a `work` branch that conflicts with it in every f* file,
    every driver configured to touch marks/<kind>-<n>, and .gitattributes selecting them.
    f<n> goes through filter F<name> (clean, smudge, required), diff and merge D<name>;
    p<n> through the process filter P<name>."""
    repo = root / "repo"
    repo.mkdir(parents=True)
    marks.mkdir(exist_ok=True)
    git(repo, "init", "-q", "-b", "main")
    attributes, sections, keys = [], [], []
    for n, name in enumerate(names()):
        touch = f"touch {marks}/{{}}-{n}".format
        for section, sub, values in (
            ("filter", b"F" + name, {"clean": f"{touch('clean')}; cat",
                                     "smudge": f"{touch('smudge')}; cat", "required": "true"}),
            ("filter", b"P" + name, {"process": f"{touch('process')}; exit 1"}),
            ("diff", b"D" + name, {"textconv": f"{touch('textconv')}; cat",
                                   "command": f"{touch('command')}; true"}),
            ("merge", b"D" + name, {"driver": f"{touch('merge')}; true"}),
        ):  # fmt: skip
            quoted = sub.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
            sections.append(b'[%s "%s"]\n' % (section.encode(), quoted))
            for key, value in values.items():
                sections.append(b'\t%s = "%s"\n' % (key.encode(), value.encode()))
                keys.append(b"%s.%s.%s" % (section.encode(), sub, key.encode()))
        if selectable(name):
            attributes.append(b"f%d filter=F%s diff=D%s merge=D%s\n" % (n, name, name, name))
            attributes.append(b"p%d filter=P%s\n" % (n, name))
        (repo / f"f{n}").write_text("base\n")
        (repo / f"p{n}").write_text("base\n")
    with (repo / ".git" / "config").open("ab") as config:
        config.write(b"".join(sections))
    (repo / ".gitattributes").write_bytes(b"".join(attributes))
    # git reads back every name exactly as meant.
    listed = subprocess.run(
        ["git", "config", "--null", "--name-only", "--list"], cwd=repo, env=git_env(repo),
        capture_output=True, check=True,
    ).stdout.split(b"\0")  # fmt: skip
    assert set(keys) <= set(listed)
    # The base commit is made with the drivers off, so the control starts from no marks.
    quiet = {**git_env(repo), **config_env([os.fsdecode(k) for k in keys])}
    for step in (
        ["add", "-A"],
        ["commit", "-qm", "base"],
        ["branch", "work"],
    ):
        subprocess.run(["git", *step], cwd=repo, env=quiet, check=True, capture_output=True)
    for branch, text in (("work", "work\n"), ("main", "main\n")):
        subprocess.run(["git", "checkout", "-q", branch], cwd=repo, env=quiet, check=True)
        for n in range(len(names())):
            (repo / f"f{n}").write_text(text)
        subprocess.run(["git", "commit", "-qam", branch], cwd=repo, env=quiet, check=True)
    assert list(marks.iterdir()) == []
    return repo


def marks_of(marks: Path, kind: str) -> set[int]:
    return {int(p.name.split("-")[1]) for p in marks.iterdir() if p.name.startswith(kind + "-")}


def test_git_accepts_every_byte_but_newline_in_a_subsection(tmp_path: Path) -> None:
    """The byte set the other tests use is the whole of what git takes."""
    config = str(tmp_path / "config").encode()
    taken = [
        b
        for b in range(1, 256)
        if subprocess.run(
            ["git", "config", "-f", config, b"filter.n" + bytes([b]) + b"n.clean", b"x"],
            capture_output=True,
        ).returncode
        == 0
    ]
    assert taken == SUBSECTION_BYTES


def run_every_method(repo: Path, worktree: Path) -> None:
    """Each Git method that touches the index or the working tree, on the armed repo."""
    g = Git(locate(repo) or pytest.fail("no repo"), repo)
    base = g.output([], "rev-parse", "main~1")
    for n in range(len(names())):
        (repo / f"f{n}").write_text("dirty\n")
        (repo / f"p{n}").write_text("dirty\n")
    snap = snapshots.snapshot(g, "s")
    assert snapshots.uncommitted(g)
    assert "f0" in snapshots.diff_stat(g, base)
    assert "f0" in g.diff(base, "work")
    assert snapshots.snapshot_diff(g, snap.head, snap.commit, 10**7)[0]
    for n in range(len(names())):
        (repo / f"f{n}").write_text("changed again\n")
    snapshots.restore(g, snap.commit, force=True)
    assert (repo / "f0").read_text() == "dirty\n"
    g.add_worktree(worktree, "work", base)
    here = Git(locate(worktree) or pytest.fail("no worktree"), worktree)
    # Every f* conflicts; the merge driver, switched off, cannot resolve any of them.
    assert here.rebase("main")
    assert snapshots.uncommitted(here) == ""
    g.remove_worktree(worktree)
    assert not worktree.exists()


def test_no_driver_runs_whatever_its_name(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    repo = armed_repo(tmp_path / "a", marks)
    run_every_method(repo, tmp_path / "a" / "wt")
    assert sorted(p.name for p in marks.iterdir()) == []


def test_control_the_same_drivers_run_under_plain_git(tmp_path: Path) -> None:
    """Plain git in a twin repository runs every selectable driver, so the test above
    would see a driver a switch-off missed."""
    marks = tmp_path / "marks"
    repo = armed_repo(tmp_path / "b", marks)
    chosen = {n for n, name in enumerate(names()) if selectable(name)}
    for n in range(len(names())):
        (repo / f"f{n}").write_text("dirty\n")
        (repo / f"p{n}").write_text("dirty\n")
    git(repo, "add", "--", ":(glob)f*", check=False)
    for n in chosen:  # a process filter that dies stops the whole `git add`: one at a time
        git(repo, "add", f"p{n}", check=False)
    git(repo, "diff", "--no-ext-diff", "--cached", "HEAD", check=False)
    git(repo, "diff", "--ext-diff", "HEAD~1", "HEAD", check=False)
    # merge-tree merges as rebase does, without a checkout (where P* filters would die).
    git(repo, "merge-tree", "--write-tree", "main", "work", check=False)
    git(repo, "checkout", "-q", "HEAD~1", "--", ":(glob)f*", check=False)
    assert marks_of(marks, "clean") >= chosen
    assert marks_of(marks, "process") >= chosen
    assert marks_of(marks, "textconv") >= chosen
    assert marks_of(marks, "command") >= chosen
    assert marks_of(marks, "smudge") >= chosen
    assert marks_of(marks, "merge") >= chosen


def test_a_driver_behind_a_conditional_include_does_not_run(tmp_path: Path) -> None:
    """`includeIf onbranch:` / `gitdir:` are false where the switch-offs are read, true in
    the git that `worktree add` starts for the new worktree: the driver is off anyway."""
    marks = tmp_path / "marks"
    marks.mkdir()
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / ".gitattributes").write_text("* filter=hid diff=hid\n")
    (repo / "f").write_text("base\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    hidden = tmp_path / "hidden.cfg"
    hidden.write_text(f'[filter "hid"]\n\tsmudge = "touch {marks}/smudge; cat"\n')
    deeper = tmp_path / "deeper.cfg"
    deeper.write_text("[include]\n\tpath = hidden.cfg\n")
    git(repo, "config", "includeIf.onbranch:wvo/**.path", str(hidden))
    git(repo, "config", "includeIf.gitdir:**/worktrees/**.path", "../../deeper.cfg")
    g = Git(locate(repo) or pytest.fail("no repo"), repo)
    assert "filter.hid.smudge" in g.no_drivers()
    g.add_worktree(tmp_path / "wt", "wvo/x", g.head())
    assert (tmp_path / "wt" / "f").read_text() == "base\n"
    assert list(marks.iterdir()) == []
    # Control: plain git in the same state runs it.
    git(repo, "worktree", "add", "-q", "-b", "wvo/y", str(tmp_path / "wt2"), "main")
    assert (marks / "smudge").exists()

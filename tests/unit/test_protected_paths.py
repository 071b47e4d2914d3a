"""Which paths a task's commits may not change (wvo_mcp/rules/protected_paths.py), and take_commits
refusing, on real repositories, a worker's commits that change them: nothing reaches the
person's repository."""

import os
from pathlib import Path, PurePosixPath

import pytest

from tests.gitwork import commit_file, git, has_object, host_state, person, worker
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.git import Git, Protected, intake
from wvo_mcp.rules import protected_paths

TOP = PurePosixPath("/home/p/repo")


def test_inside_names_the_folders_within_the_repository_as_git_does() -> None:
    found = protected_paths.inside(
        TOP,
        [
            TOP / ".wvo",
            TOP / "var" / "wvo",
            TOP / ".wvo",  # once
            PurePosixPath("/home/p/repo2/.wvo"),  # a sibling that shares the prefix
            PurePosixPath("/home/p/.local/state/wvo"),
            TOP,
        ],
    )
    assert found == [".wvo", "var/wvo", ""]
    assert protected_paths.inside(TOP, []) == []


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (".wvo/providers.yaml", True),
        (".wvo/directives/work-loop.md", True),
        (".wvo", True),  # a link or a file in its place
        (".wvo2/x", False),
        (".wvox", False),
        (".wv", False),
        ("src/.wvo/x", False),
        ("README.md", False),
        (".WVO/providers.yaml", False),  # another path where git tells case apart
    ],
)
def test_touches_the_folder_itself_or_what_is_in_it(path: str, expected: bool) -> None:
    assert protected_paths.touches(path, ".wvo") is expected


def test_a_folder_leading_to_it_counts_and_its_other_files_do_not() -> None:
    assert protected_paths.touches("var", "var/wvo")  # replaced by a link: wvo goes with it
    assert protected_paths.touches("var/wvo/providers.yaml", "var/wvo")
    assert not protected_paths.touches("var/other.txt", "var/wvo")
    assert not protected_paths.touches("va", "var/wvo")
    assert protected_paths.touches("anything", "")  # the whole repository


def test_case_and_unicode_fold_only_where_git_ignores_case() -> None:
    nfd = "sta\u0301te"  # "státe" decomposed
    assert protected_paths.touches(".WVO/providers.yaml", ".wvo", fold=True)
    assert protected_paths.touches(f"{nfd}/x", "st\u00e1te", fold=True)
    assert not protected_paths.touches(f"{nfd}/x", "st\u00e1te")


def test_touched_lists_each_offending_path_once_in_order() -> None:
    paths = ["a.txt", ".wvo/p.yaml", "b/c", ".wvo", ".wvo/p.yaml", "var"]
    assert protected_paths.touched(paths, [".wvo"]) == [".wvo/p.yaml", ".wvo"]
    assert protected_paths.touched(paths, [".wvo", "var/wvo"]) == [".wvo/p.yaml", ".wvo", "var"]
    assert protected_paths.touched(paths, []) == []


def test_refusal_names_the_paths_the_folder_and_what_to_do() -> None:
    summary, details = protected_paths.refusal([".wvo/providers.yaml"], [".wvo"], "ab" * 20)
    assert summary == (
        "returned: its commits change wvo-mcp's state folder .wvo/: .wvo/providers.yaml"
    )
    assert "ab" * 20 in details and ".wvo/providers.yaml" in details
    assert "may not change anything in it" in details and "submit again" in details
    many = [f".wvo/{n}" for n in range(protected_paths.SHOWN + 1)]
    summary, _ = protected_paths.refusal(many, [".wvo", ""], "c" * 40)
    assert summary.endswith(f".wvo/{protected_paths.SHOWN - 1} and more")
    assert "folder .wvo/ or ./:" in summary
    assert len(protected_paths.refusal(["x" * 600], [".wvo"], "c" * 40)[0]) == 500


# -- take_commits, on real repositories -----------------------------------------------------


def guarded(tmp_path: Path, state: str = ".wvo") -> Git:
    """The person's repository with its state folder inside it, ignored by git, and the
    Git the autopilot makes on it (the state folder excluded)."""
    host = person(tmp_path / "person")
    top = host.repo.top
    (top / ".gitignore").write_text(f"/{state}/\n")
    git(top, "add", ".gitignore")
    git(top, "commit", "-qm", "ignore the state folder")
    (top / state).mkdir(parents=True)
    (top / state / "providers.yaml").write_text("version: 1\n")
    return Git(host.repo, top, exclude=[top / state])


def force_commit(w: Path, name: str, link: str | None = None) -> str:
    """The worker commits `name` (a file, or a link to `link`) past .gitignore."""
    (w / name).parent.mkdir(parents=True, exist_ok=True)
    if link is None:
        (w / name).write_text("providers: []\n")
    else:
        (w / name).symlink_to(link)
    git(w, "add", "-f", "--", name)
    git(w, "commit", "-qm", f"add {name}")
    return git(w, "rev-parse", "HEAD")


def refused(host: Git, w: Path, tip: str, old: str | None = None) -> Protected:
    """take_commits refuses `tip` and leaves the person's repository as it was."""
    before = host_state(host)
    with pytest.raises(Protected) as caught:
        intake.take_commits(host, w / ".git" / "objects", tip, "refs/heads/wvo/T1", old)
    assert host_state(host) == before
    assert not has_object(host.repo.top, tip)
    assert isinstance(caught.value, ValidationFailed)  # a refusal like any other intake's
    assert caught.value.tip == tip
    return caught.value


def test_the_state_folder_is_protected_as_named_and_as_resolved(tmp_path: Path) -> None:
    host = guarded(tmp_path)
    assert host.protected == [".wvo"]
    top = host.repo.top
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (top / "linked").symlink_to(elsewhere)
    outside = tmp_path / "outside"
    linked = Git(host.repo, top, exclude=[top / "linked", top / "in" / "..", outside])
    assert linked.protected == ["linked", ""]  # the link itself; `in/..` is the top
    assert Git(host.repo, top, exclude=[outside]).protected == []


def test_a_file_in_the_state_folder_is_refused_and_nothing_taken(tmp_path: Path) -> None:
    host = guarded(tmp_path)
    w = worker(host, tmp_path / "w")
    commit_file(w, "app.py", "print('v2')\n")
    tip = force_commit(w, ".wvo/providers.yaml")
    found = refused(host, w, tip)
    assert found.paths == [".wvo/providers.yaml"] and found.folders == [".wvo"]
    assert ".wvo/providers.yaml" in str(found) and "nothing was taken" in str(found)
    assert (host.repo.top / ".wvo" / "providers.yaml").read_text() == "version: 1\n"


def test_a_link_or_a_file_in_place_of_the_state_folder_is_refused(tmp_path: Path) -> None:
    host = guarded(tmp_path)
    w = worker(host, tmp_path / "w")
    assert refused(host, w, force_commit(w, ".wvo", link=str(tmp_path))).paths == [".wvo"]
    w2 = worker(host, tmp_path / "w2", "wvo/T2")
    (w2 / ".wvo").write_text("not a folder\n")
    git(w2, "add", "-f", ".wvo")
    git(w2, "commit", "-qm", "a file")
    assert refused(host, w2, git(w2, "rev-parse", "HEAD")).paths == [".wvo"]


def test_a_link_in_place_of_a_folder_leading_to_it_is_refused(tmp_path: Path) -> None:
    host = guarded(tmp_path, state="var/wvo")
    assert host.protected == ["var/wvo"]
    w = worker(host, tmp_path / "w")
    commit_file(w, "var/other.txt", "fine\n")  # beside the state folder: allowed
    ok = intake.take_commits(host, w / ".git" / "objects", git(w, "rev-parse", "HEAD"),
                           "refs/heads/wvo/T1", None)  # fmt: skip
    assert len(ok) == 1
    git(w, "rm", "-rq", "var")
    tip = force_commit(w, "var", link=str(tmp_path))
    assert refused(host, w, tip, ok[0]).paths == ["var"]


def test_every_new_commit_counts_not_only_the_tip(tmp_path: Path) -> None:
    """Added, then removed: the tip's tree is clean, but a person replaying or checking out
    the first commit would get the file. Renamed out: both sides are listed. On a side
    branch merged in: the merge and the branch both count."""
    host = guarded(tmp_path)
    w = worker(host, tmp_path / "w")
    force_commit(w, ".wvo/providers.yaml")
    git(w, "rm", "-q", "--cached", ".wvo/providers.yaml")
    git(w, "commit", "-qm", "gone again")
    tip = git(w, "rev-parse", "HEAD")
    assert git(w, "ls-tree", "-r", "--name-only", "HEAD").find(".wvo") == -1
    assert refused(host, w, tip).paths == [".wvo/providers.yaml"]

    w2 = worker(host, tmp_path / "w2", "wvo/T2")
    force_commit(w2, ".wvo/directives/work-loop.md")
    git(w2, "mv", ".wvo/directives/work-loop.md", "moved.md")
    git(w2, "commit", "-qm", "moved out")
    found = refused(host, w2, git(w2, "rev-parse", "HEAD"))
    assert found.paths == [".wvo/directives/work-loop.md"]

    w3 = worker(host, tmp_path / "w3", "wvo/T3")
    git(w3, "checkout", "-qb", "side")
    force_commit(w3, ".wvo/tokens")
    git(w3, "checkout", "-q", "wvo/T3")
    commit_file(w3, "app.py", "print('v3')\n")
    git(w3, "merge", "-q", "--no-edit", "side")
    assert refused(host, w3, git(w3, "rev-parse", "HEAD")).paths == [".wvo/tokens"]


def test_ordinary_commits_and_a_repository_without_the_folder_inside_are_taken(
    tmp_path: Path,
) -> None:
    host = guarded(tmp_path)
    w = worker(host, tmp_path / "w")
    commit_file(w, ".wvo2/x", "a neighbour\n")
    tip = commit_file(w, "src/.wvo/x", "deeper, elsewhere\n")
    assert (
        len(intake.take_commits(host, w / ".git" / "objects", tip, "refs/heads/wvo/T1", None)) == 2
    )
    assert git(host.repo.top, "rev-parse", "wvo/T1") == tip
    # The same commits into a repository whose state folder lies elsewhere: nothing to guard.
    other = person(tmp_path / "other")
    plain = Git(other.repo, other.repo.top, exclude=[tmp_path / "state"])
    assert plain.protected == []
    w2 = worker(plain, tmp_path / "w2")
    tip = force_commit(w2, ".wvo/providers.yaml")
    assert intake.take_commits(plain, w2 / ".git" / "objects", tip, "refs/heads/wvo/T1", None) == [
        tip
    ]


def test_a_repository_that_ignores_case_folds_it(tmp_path: Path) -> None:
    host = guarded(tmp_path)
    git(host.repo.top, "config", "core.ignorecase", "true")
    w = worker(host, tmp_path / "w")
    tip = force_commit(w, ".WVO/providers.yaml")
    assert refused(host, w, tip).paths == [".WVO/providers.yaml"]
    assert os.path.isdir(host.repo.top / ".wvo")

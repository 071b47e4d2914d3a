"""Which forge a remote or a repository name points at (forge/select.py): GitHub as it always
was, GitLab by its /api/v4 or its host, a GitLab project's full path kept (pure)."""

import pytest

from wvo_mcp.errors import ValidationFailed
from wvo_mcp.forge import select
from wvo_mcp.forge.select import Located


@pytest.mark.parametrize(
    ("url", "api", "found"),
    [
        ("https://github.com/team/project.git", None,
         Located("github", "https://api.github.com", "team/project", "github.com")),
        ("git@github.com:team/project.git", None,
         Located("github", "https://api.github.com", "team/project", "github.com")),
        ("ssh://git@github.com/team/project", None,
         Located("github", "https://api.github.com", "team/project", "github.com")),
        ("https://ghe.example/team/project.git", None,
         Located("github", "https://ghe.example/api/v3", "team/project", "ghe.example")),
        ("https://ghe.example/team/project.git", "https://ghe.example/api/v3/",
         Located("github", "https://ghe.example/api/v3", "team/project", "ghe.example")),
        ("http://127.0.0.1:8123/team/project.git", "http://127.0.0.1:8123/api/v3",
         Located("github", "http://127.0.0.1:8123/api/v3", "team/project", "127.0.0.1")),
        # GitHub keeps the last two parts, as it always did.
        ("https://ghe.example/x/team/project.git", None,
         Located("github", "https://ghe.example/api/v3", "team/project", "ghe.example")),
    ],
)  # fmt: skip
def test_a_github_remote_is_located_as_before(url: str, api: str | None, found: Located) -> None:
    assert select.locate(url, api) == found


@pytest.mark.parametrize(
    ("url", "api", "found"),
    [
        ("https://gitlab.com/group/sub/project.git", None,
         Located("gitlab", "https://gitlab.com/api/v4", "group/sub/project", "gitlab.com")),
        ("git@gitlab.com:group/sub/deeper/project.git", None,
         Located("gitlab", "https://gitlab.com/api/v4", "group/sub/deeper/project",
                 "gitlab.com")),
        ("ssh://git@gitlab.example.org:2222/group/sub/project.git", None,
         Located("gitlab", "https://gitlab.example.org/api/v4", "group/sub/project",
                 "gitlab.example.org")),
        ("https://code.example/group/project.git", "https://code.example/api/v4",
         Located("gitlab", "https://code.example/api/v4", "group/project", "code.example")),
        ("git@code.example:group/project.git", "https://code.example/api/v4/",
         Located("gitlab", "https://code.example/api/v4", "group/project", "code.example")),
        # A relative URL root: stripped from an https remote on the API's host.
        ("https://host.example/gitlab/group/sub/project.git", "https://host.example/gitlab/api/v4",
         Located("gitlab", "https://host.example/gitlab/api/v4", "group/sub/project",
                 "host.example")),
        # An ssh remote carries no root.
        ("git@host.example:group/project.git", "https://host.example/gitlab/api/v4",
         Located("gitlab", "https://host.example/gitlab/api/v4", "group/project",
                 "host.example")),
        # The API decides: a GitHub API for a host named gitlab is GitHub's.
        ("https://gitlab.example/team/project.git", "https://gitlab.example/api/v3",
         Located("github", "https://gitlab.example/api/v3", "team/project", "gitlab.example")),
    ],
)  # fmt: skip
def test_a_gitlab_remote_keeps_its_whole_path(url: str, api: str | None, found: Located) -> None:
    assert select.locate(url, api) == found


@pytest.mark.parametrize(
    "url",
    ["https://gitlab.com/project.git", "git@gitlab.com:project",
     "https://gitlab.com/group/project/-/tree/main", "/srv/git/project.git"],
)  # fmt: skip
def test_a_remote_naming_no_project_is_refused_with_what_is_accepted(url: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        select.locate(url)
    said = str(refused.value)
    assert "names no" in said
    assert "group/project" in said or "owner/name" in said


def test_a_remote_s_credentials_are_not_said() -> None:
    with pytest.raises(ValidationFailed) as refused:
        select.locate("https://someone:s3cret@gitlab.com/project.git")
    assert "s3cret" not in str(refused.value)


@pytest.mark.parametrize(
    ("spec", "api", "found"),
    [
        ("github:team/project", None,
         Located("github", "https://api.github.com", "team/project", "github.com")),
        ("github:team/project/", "http://127.0.0.1:8123/api/v3",
         Located("github", "http://127.0.0.1:8123/api/v3", "team/project", "127.0.0.1")),
        ("gitlab:group/sub/project", None,
         Located("gitlab", "https://gitlab.com/api/v4", "group/sub/project", "gitlab.com")),
        ("gitlab:group/project", "https://code.example/gitlab/api/v4",
         Located("gitlab", "https://code.example/gitlab/api/v4", "group/project",
                 "code.example")),
        ("team/project", None,
         Located("github", "https://api.github.com", "team/project", "github.com")),
        ("group/sub/project", "https://code.example/api/v4",
         Located("gitlab", "https://code.example/api/v4", "group/sub/project", "code.example")),
    ],
)  # fmt: skip
def test_a_named_repository_is_on_its_forge(spec: str, api: str | None, found: Located) -> None:
    assert select.named(spec, api) == found


@pytest.mark.parametrize(
    ("spec", "api", "words"),
    [
        ("github:team", None, "give github:OWNER/REPO"),
        ("github:a/b/c", None, "give github:OWNER/REPO"),
        ("gitlab:project", None, "give gitlab:GROUP/PROJECT"),
        ("gitlab:group//project", None, "give gitlab:GROUP/PROJECT"),
        ("bitbucket:team/project", None, "names no forge"),
        ("gitlab:group/project", "https://ghe.example/api/v3", "https://HOST/api/v4"),
        ("github:team/project", "https://gitlab.com/api/v4", "https://HOST/api/v3"),
    ],
)  # fmt: skip
def test_a_named_repository_is_refused_with_what_is_accepted(
    spec: str, api: str | None, words: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        select.named(spec, api)
    assert words in str(refused.value) and repr(spec) in str(refused.value)


def test_the_kind_of_an_api_is_read_from_its_path() -> None:
    assert select.kind_of("https://gitlab.com/api/v4") == "gitlab"
    assert select.kind_of("https://host/gitlab/api/v4/") == "gitlab"
    assert select.kind_of("https://api.github.com") == "github"
    assert select.kind_of("https://ghe.example/api/v3") == "github"


def test_a_gitlab_project_gets_the_gitlab_client_with_its_token_and_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from wvo_mcp.forge.gitlab import GitLab

    monkeypatch.setenv("WVO_FORGE_TOKEN", "glpat-for-the-test")
    found = select.connect(select.named("gitlab:group/sub/project"), 5.0)
    assert isinstance(found, GitLab) and found.kind == "gitlab"
    assert found.where == "group/sub/project on https://gitlab.com/api/v4"
    assert found.calls == 0  # built without asking GitLab anything
    assert "glpat" not in repr(vars(found))

"""docs/http.md's webhook sections name every answer each webhook gives (edge/github_webhooks.py
for GitHub, edge/gitlab_webhooks.py for GitLab, each over the pipeline both share,
edge/deliveries.py), and no other: a person reading the forge's list of recent deliveries finds
each code there."""

import re

import pytest

from tests.conftest import ROOT


@pytest.mark.parametrize(
    ("module", "heading"),
    [("github_webhooks.py", "## GitHub's webhook"), ("gitlab_webhooks.py", "## GitLab's webhook")],
)
def test_every_answer_code_of_the_webhook_is_documented(module: str, heading: str) -> None:
    edge = ROOT / "wvo_mcp" / "edge"
    source = (edge / module).read_text() + (edge / "deliveries.py").read_text()
    given = {int(c) for c in re.findall(r"(?:refused\(|status_code=)(\d{3})", source)}
    given |= {200, 405}  # JSONResponse's own, and Starlette's for a method the route lacks
    assert {202, 400, 401, 404, 409, 413, 503} <= given, given
    docs = (ROOT / "docs" / "http.md").read_text()
    assert heading in docs
    section = docs.split(heading, 1)[1].split("\n## ", 1)[0]
    documented = {int(c) for c in re.findall(r"^\| `(\d{3})` \|", section, re.MULTILINE)}
    assert documented == given, (sorted(documented), sorted(given))

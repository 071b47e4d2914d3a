"""docs/http.md's webhook section names every answer the webhook gives (edge/webhooks.py),
and no other: a person reading GitHub's Recent Deliveries finds each code there."""

import re

from tests.conftest import ROOT


def test_every_answer_code_of_the_webhook_is_documented() -> None:
    source = (ROOT / "wvo_mcp" / "edge" / "webhooks.py").read_text()
    given = {int(c) for c in re.findall(r"(?:_refused\(|status_code=)(\d{3})", source)}
    given |= {200, 405}  # JSONResponse's own, and Starlette's for a method the route lacks
    assert {202, 400, 401, 404, 409, 413, 503} <= given, given
    docs = (ROOT / "docs" / "http.md").read_text()
    assert "## GitHub's webhook" in docs
    section = docs.split("## GitHub's webhook", 1)[1].split("\n## ", 1)[0]
    documented = {int(c) for c in re.findall(r"^\| `(\d{3})` \|", section, re.MULTILINE)}
    assert documented == given, (sorted(documented), sorted(given))

"""Actor names and the one agent a server acts as (pure)."""

import pytest

from wvo_mcp.errors import ValidationFailed
from wvo_mcp.rules.identity import OneAgent, check_agent_id, default_name, person


@pytest.mark.parametrize(
    "name", ["health-monitor", "SCHEDULER", "person:bob", "Person:x", " a", "a\n", "a\x00"]
)
def test_reserved_or_unprintable_names_are_refused(name: str) -> None:
    with pytest.raises(ValidationFailed):
        check_agent_id(name)


def test_people_are_named_person() -> None:
    assert person("alice") == "person:alice" == person("person:alice")
    assert person().startswith("person:")


def test_a_client_named_like_a_person_gets_a_plain_default() -> None:
    assert default_name("claude-code", 7) == "claude-code-7"
    assert default_name("person:root", 7) == "agent-7"


def test_the_first_id_given_is_kept() -> None:
    agent = OneAgent(None)
    assert agent.resolve(None, lambda: "dflt", claims=False) == "dflt"
    assert agent.name is None  # looking around does not fix the identity
    assert agent.resolve("alpha", lambda: "dflt", claims=False) == "alpha"
    assert agent.resolve(None, lambda: "dflt", claims=True) == "alpha"
    with pytest.raises(ValidationFailed, match="cannot switch to 'beta'"):
        agent.resolve("beta", lambda: "dflt", claims=True)
    assert agent.name == "alpha"


def test_a_claim_under_the_default_fixes_it() -> None:
    agent = OneAgent(None)
    assert agent.resolve(None, lambda: "dflt", claims=True) == "dflt"
    with pytest.raises(ValidationFailed):
        agent.resolve("other", lambda: "dflt", claims=False)


def test_the_configured_id_is_the_only_one() -> None:
    agent = OneAgent("env-agent")
    assert agent.resolve(None, lambda: "dflt", claims=False) == "env-agent"
    assert agent.resolve("env-agent", lambda: "dflt", claims=True) == "env-agent"
    with pytest.raises(ValidationFailed):
        agent.resolve("explicit", lambda: "dflt", claims=False)

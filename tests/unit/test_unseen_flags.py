"""The flags an answer carries for this server alone (models/claims.py `_Unseen`): plain class
attributes rather than pydantic's private ones, so set on an answer they must still stay off
everything its agent sees, and off its equality, as pydantic's private attributes did."""

from wvo_mcp.models import ClaimResult, LeaseResult


def test_a_set_flag_is_kept_but_never_dumped_compared_or_described() -> None:
    plain = ClaimResult(claimed=True, agent_id="a-1", message="granted")
    flagged = ClaimResult(claimed=True, agent_id="a-1", message="granted")
    flagged._no_notes_for = "a-1"
    flagged._took_over_expired = True
    flagged._lost = "T-1"

    assert (flagged._no_notes_for, flagged._took_over_expired) == ("a-1", True)
    # Another answer, of the same class or not, keeps the defaults.
    assert (plain._no_notes_for, plain._took_over_expired, plain._lost) == (None, False, None)
    lease = LeaseResult(task_id="T-1", lease_expires_at="2026-01-01T00:00:00Z")
    assert lease._no_notes_for is None
    # Off the wire, the schema and the repr; equal to the same answer unflagged.
    assert flagged.model_dump() == plain.model_dump()
    assert flagged.model_dump_json(by_alias=True, exclude_none=True) == plain.model_dump_json(
        by_alias=True, exclude_none=True
    )
    assert "_no_notes_for" not in str(ClaimResult.model_json_schema())
    assert "_took_over_expired" not in str(ClaimResult.model_json_schema())
    assert "_lost" not in str(ClaimResult.model_json_schema())
    assert "a-1" not in repr(flagged).replace("agent_id='a-1'", "")
    assert flagged == plain
    # A copy keeps them, as it kept pydantic's private attributes.
    assert flagged.model_copy(update={"message": "again"})._took_over_expired is True

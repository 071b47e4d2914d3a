"""Claim admission's rules (rules/claim_admission.py): when a claim is refused before it waits,
and the time it is told to come back."""

from hypothesis import given
from hypothesis import strategies as st

from wvo_mcp.rules import claim_admission
from wvo_mcp.rules.claim_admission import (
    CLAIM_BURST,
    CLAIM_FLOOR,
    CLAIM_SHARE,
    MAX_TOLD,
    QUEUE_SAMPLES,
    QUEUE_TARGET_S,
    QUEUE_WINDOW_S,
    RAMP_DOUBLING_S,
    RAMP_MAX,
    RETRY_MAX_S,
    RETRY_MIN_S,
    WAIT_BOUND_S,
    ClaimAdmission,
)


def test_claims_are_admitted_while_their_wait_stays_within_the_bound() -> None:
    admission = ClaimAdmission(turn_s=0.05)
    fits = int(WAIT_BOUND_S / 0.05)  # 5 claims of 50 ms: the fifth waits 200 ms, then its own
    for ahead in range(fits):
        assert admission.refuse(10.0) is None
        assert admission.enter() == ahead
    back = admission.refuse(10.0)
    assert back is not None and admission.waiting == fits  # refused: nothing entered


def test_a_claim_with_none_ahead_always_goes_for_its_turn() -> None:
    """After an outage whose claims waited it out (15 s a turn), the next claim is still
    admitted, and quick turns bring claim admission back: never refused for good."""
    admission = ClaimAdmission()
    admission.leave(15.0, admission.enter())  # waited through a database restart
    assert admission.turn_s <= WAIT_BOUND_S
    assert admission.refuse(100.0) is None
    for _ in range(30):
        admission.leave(0.003, admission.enter())
    assert admission.turn_s < 0.01


def test_each_refused_claim_gets_its_own_later_slot_spaced_by_a_turn() -> None:
    admission = ClaimAdmission(turn_s=0.5, waiting=1)  # one in its turn: the next would wait 1 s
    times = [admission.refuse(10.0) for _ in range(4)]
    assert times == [0.5, 1.0, 1.5, 2.0]
    # Slots handed out earlier are kept: later refusals queue behind them, not on top.
    assert admission.refuse(10.5) == 2.0


def test_a_slot_is_never_sooner_than_the_minimum_nor_later_than_the_maximum() -> None:
    admission = ClaimAdmission(turn_s=0.01, waiting=1000)
    assert admission.refuse(0.0) == RETRY_MIN_S
    slow = ClaimAdmission(turn_s=RETRY_MAX_S, waiting=1)
    assert slow.refuse(0.0) == RETRY_MAX_S
    # Past the farthest time, the claims told are spread over its second half.
    later = [slow.refuse(0.0) for _ in range(200)]
    assert all(RETRY_MAX_S / 2 <= t <= RETRY_MAX_S for t in later)
    halves = sum(t < 0.75 * RETRY_MAX_S for t in later)
    assert 80 <= halves <= 120  # evenly: about half in each quarter


def test_held_work_standing_in_a_queue_holds_claims_back_for_a_window() -> None:
    admission = ClaimAdmission()
    slow = QUEUE_TARGET_S * 2
    for i in range(QUEUE_SAMPLES):
        admission.held(1.0 + i * 0.01, slow)
    assert admission.refuse(1.2) is None  # judged when the window ends, not sample by sample
    admission.held(1.0 + QUEUE_WINDOW_S, slow)  # the next window begins: the last one queued
    now = 1.0 + QUEUE_WINDOW_S
    back = admission.refuse(now)
    # Told to come back once the window is over, not while it is sure to be refused.
    assert back is not None and now + back >= admission.full_until and back <= RETRY_MAX_S
    assert admission.refuse(now + QUEUE_WINDOW_S) is None  # a window later, unless it queues again


def test_new_holders_are_let_in_at_a_share_of_the_held_work_served() -> None:
    """A burst at once, then CLAIM_SHARE of the held writes a second: 1,000 held writes a
    second let in 100 claims a second, an idle process CLAIM_FLOOR."""
    admission = ClaimAdmission(allowed_at=10.0)
    for i in range(20):  # two windows of 500 quick heartbeats a window
        for j in range(500):
            admission.held(i * QUEUE_WINDOW_S + j / 1000, 0.001)
    admission.held(20 * QUEUE_WINDOW_S, 0.001)
    assert (
        900 < admission.held_per_s <= 1000
        and admission.admit_per_s(10.0) == CLAIM_SHARE * admission.held_per_s
    )
    for _ in range(int(CLAIM_BURST)):
        assert admission.refuse(10.0) is None
        admission.leave(0.001, admission.enter())
    back = admission.refuse(10.0)
    assert back is not None  # the burst is spent: told the next slot
    assert admission.refuse(10.0 + 1 / admission.admit_per_s(10.0)) is None  # one more a slot later
    idle = ClaimAdmission(allowance=0.0, allowed_at=0.0)
    assert idle.admit_per_s(0.0) == CLAIM_FLOOR  # where the slow start begins
    assert idle.refuse(0.5 / CLAIM_FLOOR) is not None
    assert idle.refuse(1 / CLAIM_FLOOR) is None


def test_a_holder_finishing_lets_one_claim_take_its_place_however_fast() -> None:
    """An agent finishing and claiming again adds no holder: its loop is never held back
    by the rate new holders come in at."""

    def refused(frees: bool) -> int:
        admission, refused = ClaimAdmission(allowance=1.0, allowed_at=0.0), 0
        for i in range(1000):  # a thousand claims in a second
            if admission.refuse(i / 1000) is not None:
                refused += 1
                continue
            admission.leave(0.0005, admission.enter())
            if frees:
                admission.freed()
        return refused

    assert refused(frees=True) == 0
    assert refused(frees=False) > 900  # new holders: CLAIM_FLOOR a second came in


def test_requests_crowding_in_fill_the_process_as_queued_held_work_does() -> None:
    admission = ClaimAdmission()
    admission.crowd(5.0)
    assert admission.full(5.0) and admission.refuse(5.0) is not None
    assert admission.refuse(5.0 + QUEUE_WINDOW_S) is None


def test_a_burst_or_a_few_slow_calls_hold_nothing_back() -> None:
    burst = ClaimAdmission()
    for i in range(QUEUE_SAMPLES * 2):  # one quick call in the window: no standing queue
        burst.held(1.0 + i * 0.01, 0.001 if i == 5 else 1.0)
    burst.held(1.0 + QUEUE_WINDOW_S, 1.0)
    assert burst.refuse(1.0 + QUEUE_WINDOW_S) is None
    few = ClaimAdmission()
    for i in range(QUEUE_SAMPLES - 1):  # too few to judge (a quiet process's slow fsync)
        few.held(1.0 + i * 0.01, 1.0)
    few.held(1.0 + QUEUE_WINDOW_S, 1.0)
    assert few.refuse(1.0 + QUEUE_WINDOW_S) is None


def test_a_turn_is_learnt_from_claims_through_it() -> None:
    admission = ClaimAdmission(turn_s=0.01)
    ahead = admission.enter()
    admission.leave(0.03, ahead)  # alone: its whole time was its turn
    assert admission.waiting == 0
    assert abs(admission.turn_s - (0.01 + claim_admission.SMOOTHING * 0.02)) < 1e-9
    admission.enter()
    behind = admission.enter()
    admission.leave(None, 0)  # refused at the bound: it took no turn, nothing learnt
    admission.leave(0.3, behind)  # waited out one turn, then its own: 0.15 s each
    expected = 0.014 + claim_admission.SMOOTHING * (0.15 - 0.014)
    assert admission.waiting == 0 and abs(admission.turn_s - expected) < 1e-9


def test_claims_queue_while_one_is_in_its_turn_or_turns_took_long() -> None:
    admission = ClaimAdmission()
    assert not admission.contended()  # the turn is free: a claim goes straight to it
    ahead = admission.enter()
    assert admission.contended()  # one in its turn: the next reads first
    admission.leave(WAIT_BOUND_S, ahead)  # refused at the bound: it waited the whole of it
    assert admission.waiting == 0 and admission.contended()
    for _ in range(30):  # quick turns again: no longer
        admission.leave(0.002, admission.enter())
    assert not admission.contended()


def test_an_idle_gap_is_a_window_with_nothing_served() -> None:
    admission = ClaimAdmission(held_per_s=100.0, window_end=1.0)
    admission.held(3600.0, 0.001)  # an hour after the last window: one write in an hour
    assert admission.held_per_s < 100.0 * (1 - claim_admission.SMOOTHING) + 1e-6


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["refuse", "enter", "held"]),
            st.floats(0.0, 5.0),  # time step
            st.floats(0.0, 3.0),  # a call's seconds
        ),
        max_size=200,
    )
)
def test_every_time_told_is_within_the_limits_and_no_sooner_than_the_last(
    steps: list[tuple[str, float, float]],
) -> None:
    admission, now, last_slot = ClaimAdmission(), 0.0, 0.0
    for kind, step, took in steps:
        now += step
        if kind == "refuse":
            back = admission.refuse(now)
            if back is not None:
                assert RETRY_MIN_S <= back <= RETRY_MAX_S
                assert now + back >= last_slot - 0.01 or back >= RETRY_MAX_S / 2
                last_slot = max(last_slot, now + back)
        elif kind == "enter":
            admission.leave(took, admission.enter())
        else:
            admission.held(now, took)
        assert admission.waiting == 0 and admission.turn_s > 0 and admission.held_per_s >= 0
        assert admission.allowance <= CLAIM_BURST


def test_a_calm_process_lets_new_holders_in_faster_and_faster_up_to_the_ramps_most() -> None:
    """Slow start: from CLAIM_FLOOR a second, doubling every RAMP_DOUBLING_S while held work
    stands in no queue, to RAMP_MAX; a fleet claiming at once from an idle process is in
    within seconds (at the floor alone, 5 s would let in 112)."""
    admission = ClaimAdmission()
    assert admission.refuse(0.0) is None and admission.admit_per_s(0.0) == CLAIM_FLOOR
    assert admission.admit_per_s(RAMP_DOUBLING_S) == 2 * CLAIM_FLOOR
    assert admission.admit_per_s(100 * RAMP_DOUBLING_S) == RAMP_MAX
    admitted = 0
    for i in range(5000):  # a claim every millisecond for 5 s, each granted at once
        if admission.refuse(i / 1000, f"agent-{i}") is None:
            admission.leave(0.001, admission.enter())
            admitted += 1
    assert 200 < admitted <= CLAIM_BURST + 5 * RAMP_MAX


def test_held_work_queueing_sends_the_slow_start_back_to_the_floor() -> None:
    admission = ClaimAdmission()
    admission.refuse(0.0)
    assert admission.admit_per_s(10.0) == RAMP_MAX
    for i in range(QUEUE_SAMPLES):
        admission.held(10.0 + i * 0.01, QUEUE_TARGET_S * 2)
    admission.held(10.0 + QUEUE_WINDOW_S, QUEUE_TARGET_S * 2)  # judged: it stood in a queue
    end = admission.full_until
    assert admission.refuse(end - 0.01) is not None  # refused while full
    assert admission.admit_per_s(end) == CLAIM_FLOOR  # then from the floor again
    assert admission.admit_per_s(end + 2 * RAMP_DOUBLING_S) == 4 * CLAIM_FLOOR
    admission.crowd(end + 3.0)  # requests crowding in do the same
    assert admission.admit_per_s(end + 3.0 + QUEUE_WINDOW_S) == CLAIM_FLOOR


def test_an_agent_back_before_its_time_is_told_what_is_left_of_it() -> None:
    admission = ClaimAdmission(turn_s=0.5, waiting=1)
    back = admission.refuse(10.0, "early")
    assert back is not None
    assert admission.early("early", 10.0 + back / 2) == back / 2
    assert admission.early("other", 10.0) is None  # told nothing
    assert admission.early("early", 10.0 + back) is None  # its time has come
    assert "early" not in admission.told
    admission.turn_refused(11.0, "late")  # a time told at the turn is kept too
    assert admission.early("late", 11.0) is not None


def test_the_times_told_are_kept_for_a_bounded_number_of_agents() -> None:
    admission = ClaimAdmission(turn_s=0.5, waiting=1)
    for i in range(MAX_TOLD + 50):
        admission.refuse(0.0, f"a{i}")
    assert len(admission.told) == MAX_TOLD
    assert admission.early("a0", 0.0) is None  # the oldest told were forgotten first
    assert admission.early(f"a{MAX_TOLD + 49}", 0.0) is not None


def test_a_full_table_of_times_told_forgets_one_a_refusal_and_scans_none() -> None:
    """Once MAX_TOLD agents were told, each refusal forgets the oldest told, one, never
    looking through the rest (a refusal must stay cheap past capacity)."""
    admission = ClaimAdmission(turn_s=0.5, waiting=1)
    for i in range(MAX_TOLD):
        admission.refuse(0.0, f"a{i}")
    admission.refuse(100.0, "late")  # every time told before has passed by now
    assert len(admission.told) == MAX_TOLD and "a0" not in admission.told and "a1" in admission.told
    assert next(reversed(admission.told)) == "late"


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["claim", "held", "crowd"]),
            st.floats(0.0, 2.0),  # time step
            st.integers(0, 5),  # which agent
        ),
        max_size=200,
    )
)
def test_an_agent_is_never_let_in_before_the_time_it_was_told(
    steps: list[tuple[str, float, int]],
) -> None:
    """As the HTTP edge uses claim admission: an agent back early is held (or told what is left);
    once its time has come, claim admission decides again. No agent gets a claim let in before
    the time it was last told, and each time told is within the limits."""
    admission, now, due = ClaimAdmission(), 0.0, {}
    for kind, step, who in steps:
        now += step
        agent = f"agent-{who}"
        if kind == "claim":
            left = admission.early(agent, now)
            if left is not None:
                assert 0 < left <= RETRY_MAX_S and abs(now + left - due[agent]) < 1e-6
                continue
            assert now >= due.get(agent, 0.0) - 1e-9
            back = admission.refuse(now, agent)
            if back is None:
                admission.leave(0.001, admission.enter())
            else:
                assert RETRY_MIN_S <= back <= RETRY_MAX_S
                due[agent] = now + back
        elif kind == "held":
            admission.held(now, 0.05 if who % 2 else 0.001)
        else:
            admission.crowd(now)
        assert len(admission.told) <= MAX_TOLD

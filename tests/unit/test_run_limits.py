"""A worker's resource limits, pure: how each is enforced given what the machine has (cgroup
controllers, root, the kernel, bwrap's --size), what the dry run and doctor say of it, and
the providers file's `worker.limits`, refused with the line at fault."""

import pytest

from wvo_mcp import providers
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.sandbox import run_limits
from wvo_mcp.sandbox.cgroups import shares
from wvo_mcp.sandbox.request import WorkerLimits

LIMITS = WorkerLimits(memory_mb=2048, pids=300, tmp_mb=64, home_mb=32, cpu_weight=50)
ALL_V1 = {"memory": "v1", "cpu": "v1", "pids": "v1"}


def test_cgroups_enforce_all_when_every_controller_takes_its_limit() -> None:
    plan = run_limits.plan_for(ALL_V1, root=True, kernel=(6, 8), sized=True)
    assert (plan.memory, plan.pids, plan.cpu) == ("cgroup v1", "cgroup v1", "cgroup v1")
    assert plan.complete
    said = run_limits.describe(plan, LIMITS)
    assert said == (
        "memory 2048 MB (cgroup v1); 300 processes and threads (cgroup v1); CPU weight 50 "
        "(cgroup v1); /tmp 64 MB and home 32 MB (sized tmpfs)"
    )


def test_without_a_pids_cgroup_rlimit_nproc_counts_per_sandbox_for_a_person() -> None:
    plan = run_limits.plan_for({"memory": "v2"}, root=False, kernel=(5, 14), sized=True)
    assert plan.pids == "rlimit" and plan.cpu == "nice" and plan.complete
    said = run_limits.describe(plan, LIMITS)
    assert "300 processes (RLIMIT_NPROC in its user namespace)" in said
    assert f"CPU at nice {run_limits.FALLBACK_NICE}" in said


@pytest.mark.parametrize(
    ("root", "kernel", "reason"),
    [
        (True, (6, 8), "RLIMIT_NPROC does not bind root"),
        (False, (5, 13), "before Linux 5.14 RLIMIT_NPROC counts all of your processes"),
    ],
)
def test_where_rlimit_nproc_would_not_bound_the_sandbox_processes_are_said_unlimited(
    root: bool, kernel: tuple[int, int], reason: str
) -> None:
    plan = run_limits.plan_for({}, root=root, kernel=kernel, sized=True)
    assert plan.pids == "" and not plan.complete
    said = run_limits.describe(plan, LIMITS)
    assert "processes NOT limited" in said and reason in said
    assert "memory NOT limited" in said and "Delegate=yes" in said


def test_a_bwrap_without_size_leaves_tmp_and_home_uncapped_and_says_so() -> None:
    plan = run_limits.plan_for(ALL_V1, root=False, kernel=(6, 1), sized=False)
    assert not plan.complete
    assert "/tmp and home this bwrap has no --size" in run_limits.describe(plan, LIMITS)


def test_kernel_releases_and_cpu_shares() -> None:
    assert run_limits.kernel("6.18.44-fc-v669") == (6, 18)
    assert run_limits.kernel("5.4.0-150-generic") == (5, 4)
    assert run_limits.kernel("5.15rc1") == (5, 15)
    assert run_limits.kernel("garbage") == (0, 0)
    assert shares(100) == 1024 and shares(1) == 10 and shares(10000) == 102400


PROVIDERS = """version: 1
providers:
  - name: alpha
    preference: 1
    tiers:
      - {name: t, model: m, complexity: [1, 10], input_cost_per_1k: 0, output_cost_per_1k: 0}
    worker:
      kind: claude
      limits:
        memory_mb: MEMORY
        pids: 200
"""


def test_the_providers_file_sets_limits_per_provider_and_defaults_the_rest() -> None:
    kind = providers.parse(PROVIDERS.replace("MEMORY", "1024"), "p.yaml").workers["alpha"]
    assert kind.limits == WorkerLimits(memory_mb=1024, pids=200)
    assert kind.limits.tmp_mb == 1024 and kind.limits.home_mb == 512
    assert kind.limits.cpu_weight == 100


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("MEMORY", "8"), "line 10: providers[0].worker.limits.memory_mb: Input should be"),
        (("pids: 200", "pids: 4"), "line 11: providers[0].worker.limits.pids: Input should be"),
        (("pids: 200", "tmp_mb: 0"), "line 11: providers[0].worker.limits.tmp_mb"),
        (("pids: 200", "cpu_weight: 20000"), "limits.cpu_weight: Input should be less than"),
        (("pids: 200", "cpus: 2"), "line 11: providers[0].worker.limits.cpus: Extra inputs"),
    ],
)
def test_a_limit_out_of_range_is_refused_with_the_line_at_fault(
    change: tuple[str, str], message: str
) -> None:
    text = PROVIDERS.replace(*change).replace("MEMORY", "1024")
    with pytest.raises(ValidationFailed) as info:
        providers.parse(text, "p.yaml")
    assert message in str(info.value), info.value

"""The roadmap in and out: `import` (a file or a forge's issues), `export`, `schedules`.

The roadmap in and out: `import` (new tasks, or --update from an edited roadmap) and
`export`.

Carries out `rules/outage.py`."""

import argparse
import gc
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from wvo_mcp.cli.command import Command, app_arguments, opened, person, trust_arguments
from wvo_mcp.cli.output import say, show
from wvo_mcp.config import Settings
from wvo_mcp.errors import ValidationFailed

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from wvo_mcp.edge.issue_sync import Synced
    from wvo_mcp.models import Scheduled
    from wvo_mcp.rules.text import ForgeKind
    from wvo_mcp.services.roadmap_update import RoadmapUpdate


def cmd_import(settings: Settings, args: argparse.Namespace) -> None:
    """Import a roadmap (YAML, or JSON for FILE.json) as one all-or-nothing batch of new
    tasks; with --update, apply an edited one to the tasks it names (docs/operations.md)."""
    from wvo_mcp import roadmap
    from wvo_mcp.services import tasks

    if args.file.startswith(("github:", "gitlab:")):
        _import_issues(settings, args)
        return
    if args.dry_run and not args.update:
        raise ValidationFailed(
            "--dry-run goes with --update: `wvo-mcp import --update --dry-run FILE`"
        )
    # Parsing builds millions of small objects that the cyclic GC would rescan over and
    # over (most of the time of a 100k-task import); none of them form cycles.
    gc.disable()
    try:
        specs = roadmap.load(Path(args.file))
        if args.update:
            update = anyio.run(
                lambda: opened(
                    settings, lambda o: o.update_roadmap(specs, person(args), args.dry_run)
                )
            )
        else:
            try:
                result = anyio.run(
                    lambda: opened(settings, lambda o: o.create_tasks(specs, person(args)))
                )
            except tasks.IdsTaken as exc:  # a roadmap imported before, edited since
                raise ValidationFailed(
                    f"{exc}; to apply an edited roadmap to the tasks it names: "
                    f"`wvo-mcp import --update {args.file}` (`--dry-run` shows the changes)"
                ) from None
    finally:
        gc.enable()
    if args.update:
        _print_update(update, args.file, settings.database_label, args.dry_run)
        return
    say(
        f"imported {len(result.created)} tasks into {settings.database_label}; "
        f"{len(result.ready)} ready"
    )


def _print_update(found: "RoadmapUpdate", source: str, label: str, dry_run: bool) -> None:
    would = "would " if dry_run else ""
    say(
        f"{label}: {would}update {len(found.changed)}, {would}add {len(found.added)}, "
        f"{found.unchanged} unchanged, {len(found.skipped)} skipped, "
        f"{len(found.missing)} not in {source}"
    )
    for entry in found.changed:
        say(f"  {would}update {entry.id}: {', '.join(entry.fields)}")
    for task_id in found.added:
        say(f"  {would}add {task_id}")
    for entry in found.skipped:
        say(
            f"  skipped {entry.id} ({entry.status}; the file changes {', '.join(entry.fields)}): "
            f"{entry.why}"
        )
    if found.missing:
        say("not in the file, kept as they are (an update never deletes or cancels a task):")
        for gone in found.missing:
            say(f"  {gone.id} ({gone.status}) {gone.title}")
    if dry_run:
        say("nothing changed (--dry-run)")


def cmd_export(settings: Settings, args: argparse.Namespace) -> None:
    """Write every task as a roadmap (to FILE atomically, JSON for FILE.json; or YAML to stdout)."""
    from wvo_mcp import roadmap
    from wvo_mcp.files import write_atomically

    tasks = anyio.run(lambda: opened(settings, lambda o: o.export_tasks()))
    text = roadmap.dump(tasks, as_json=bool(args.file) and args.file.endswith(".json"))
    if args.file:
        write_atomically(Path(args.file), text)
        say(f"exported {len(tasks)} tasks to {args.file}")
    else:
        show(text)


def _import_issues(settings: Settings, args: argparse.Namespace) -> None:
    """`import github:OWNER/REPO` (or gitlab:GROUP/PROJECT): the label's issues kept in step
    with their tasks, and the conversation on them (edge/issue_sync.py), once or with --every
    until stopped; it makes nothing twice, however often and on however many hosts it runs."""
    import yaml

    from wvo_mcp.edge import issue_sync
    from wvo_mcp.forge import select
    from wvo_mcp.forge.authority import Authority
    from wvo_mcp.rules import issue_tasks

    located = select.named(args.file, args.forge_api or settings.forge_api or None)
    repository = located.repository
    forge = select.connect(located, settings.remote_timeout_seconds,
                           f"import {select.EXAMPLE[located.kind]}")  # fmt: skip
    labels = issue_tasks.LABELS
    if args.labels:
        path = Path(args.labels)
        labels = issue_tasks.table(yaml.safe_load(path.read_text()), str(path))
    authority = Authority(forge, settings.trust)  # its roles kept across --every's passes

    async def one() -> "Synced":
        return await opened(
            settings,
            lambda o: issue_sync.sync(o, forge, repository, args.label, person(args), labels,
                                   args.landed_label, authority),
        )  # fmt: skip

    if args.every is None:
        _print_sync(anyio.run(one), args, repository, settings.database_label, quiet=False)
        return
    anyio.run(_every, one, args, repository, settings.database_label, forge.kind)


async def _every(
    one: "Callable[[], Awaitable[Synced]]", args: argparse.Namespace, repository: str,
    label: str, kind: "ForgeKind",
) -> None:  # fmt: skip
    """A pass every `--every` seconds until SIGINT or SIGTERM (a pass under way ends first),
    each said only when it did something. A pass that fails (the forge cannot be asked, or
    anything else) is tried again later (as long as a rate limit asks, else twice as long
    each time), said once on stderr when it starts failing and once when a pass works
    again. Only a first pass the forge refuses (the token, its permissions, the repository)
    stops it, as a single `import` would: the person is there to see it."""
    from wvo_mcp.cli.output import warn
    from wvo_mcp.errors import Fault
    from wvo_mcp.rules.issue_tasks import FORGE_NAMES
    from wvo_mcp.rules.outage import Outage

    outage = Outage()
    stop = anyio.Event()
    worked = False  # a pass went through: what fails later is waited out

    async def on_signal() -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                stop.set()
                return

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(on_signal)
        while not stop.is_set():
            wait = float(args.every)
            try:
                _print_sync(await one(), args, repository, label, quiet=True)
                worked, was = True, outage.kind
                lasted = outage.answered(time.monotonic())
                if lasted is not None:
                    forge = FORGE_NAMES[kind]
                    again = f"{forge} answers" if was.startswith("forge:") else "a pass works"
                    say(f"{again} again, after {lasted:.0f} s")
            except Fault as exc:
                if exc.kind == "auth" and not worked:
                    raise
                if outage.failed(time.monotonic(), f"forge:{exc.kind}", str(exc), exc.retry_after):
                    warn(f"{exc}; trying again in {outage.delay:.0f} s")
                wait = max(wait, outage.delay)
            except Exception as exc:  # one pass's failure ends that pass only
                said = " ".join(str(exc).split())[:300]
                if outage.failed(time.monotonic(), type(exc).__name__, said):
                    warn(f"a sync pass failed ({type(exc).__name__}: {said}); trying again in "
                         f"{outage.delay:.0f} s")  # fmt: skip
                wait = max(wait, outage.delay)
            with anyio.move_on_after(wait):
                await stop.wait()
        tasks.cancel_scope.cancel()


def _print_sync(
    done: "Synced", args: argparse.Namespace, repository: str, label: str, quiet: bool
) -> None:
    from wvo_mcp.rules.issue_tasks import pull_named

    update = done.update
    # Quiet, what stays as it was is said once: when it is news.
    skipped = [s for s in done.skipped if s.fresh or not quiet]
    held = [h for h in done.held if h.fresh or not quiet]
    if quiet and not (
        update.added or update.changed or update.skipped or done.cancelled or done.revived
        or done.finished or done.told or done.asked or done.said or skipped or held
    ):  # fmt: skip
        return
    say(
        f"synced {done.issues} issue(s) labelled {args.label!r} from {repository} into "
        f"{label}: {len(update.added)} task(s) created, "
        f"{len(update.changed)} updated, {update.unchanged} unchanged, {len(update.skipped)} "
        f"left as they are, {len(done.cancelled)} cancelled (issue closed), "
        f"{len(done.revived)} pending again (issue reopened), {len(done.skipped)} not "
        f"synced, {len(done.held)} changed by an author who does not steer; "
        f"{done.calls} API call(s)"
    )
    for entry in update.skipped:
        say(f"  {entry.id}: left as it is: {entry.why}")
    for one in skipped:
        what = f"not applied to {one.task}, which stays as it was" if one.made else "no task"
        said = "; said on the issue" if one.fresh else ""
        say(f"  #{one.number}: {what}: {one.why}{said}")
    for edit in held:
        say(f"  #{edit.number}: changed ({', '.join(edit.fields)}), not applied to {edit.task}: "
            f"its author @{edit.author} does not steer (docs/forge.md); `wvo-mcp redirect "
            f"{edit.task} --description …` changes the task")  # fmt: skip
    finished = "labelled " + repr(args.landed_label) if args.landed_label else "closed"
    for number in done.finished:
        say(f"  {number}: its task landed: commented on and {finished}")
    also = " and labelled " + repr(args.landed_label) if args.landed_label else ""
    for number in done.told:
        say(f"  {number}: its task landed: commented on{also} (closed already)")
    for issue, pull in done.merging:
        say(
            f"  #{issue}: closed by the merge of {pull_named(pull, done.kind)}: its task is not "
            "cancelled; it is done, and the issue told, once the autopilot sees the merge"
        )
    for issue, what in done.kept:
        say(f"  #{issue}: closed by {what}, not by its task's landing: its task is "
            "kept, and shown in `wvo-mcp inbox` for a person to decide")  # fmt: skip
    for task_id in done.asked:
        say(f"  {task_id}: its question is asked on its issue")
    for line in done.said:
        say(f"  {line}")


def cmd_schedules(settings: Settings, args: argparse.Namespace) -> None:
    """Tasks that come back (a roadmap entry's `every:`), each with its newest task and
    when the next comes; --stop ID ends one (its open task stays)."""
    from wvo_mcp.cli.output import print_json

    if args.stop:
        say(anyio.run(lambda: opened(settings, lambda o: o.unschedule(args.stop))))
        return
    found = anyio.run(lambda: opened(settings, lambda o: o.schedules()))
    if args.json:
        print_json([s.model_dump(mode="json") for s in found])
        return
    show_schedules(found)


def show_schedules(found: "list[Scheduled]") -> None:
    from wvo_mcp.cli.output import table
    from wvo_mcp.rules.text import plain

    table(
        ["schedule", "every", "last task", "its status", "next"],
        [
            [plain(s.id), s.every, plain(s.last_task), s.last_status or "gone",
             "stopped" if s.stopped else s.next_at]
            for s in found
        ],
    )  # fmt: skip


def _schedules_arguments(schedules: argparse.ArgumentParser) -> None:
    schedules.add_argument("--stop", metavar="ID", help="Stop this schedule.")
    schedules.add_argument("--json", action="store_true", help="As JSON.")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 1 <= value <= 86_400:
        raise argparse.ArgumentTypeError(f"{text!r}: give seconds between 1 and 86400")
    return value


def _import_arguments(imports: argparse.ArgumentParser) -> None:
    imports.add_argument(
        "file",
        help="The roadmap: YAML, or JSON for FILE.json; or github:OWNER/REPO (or "
        "gitlab:GROUP/PROJECT), whose issues with --label become tasks and stay in step "
        "(docs/operations.md).",
    )
    imports.add_argument(
        "--label",
        default="wvo",
        help="With github:OWNER/REPO (or gitlab:…): the label of the issues that are tasks "
        "(default wvo).",
    )
    imports.add_argument(
        "--labels",
        metavar="FILE",
        help="With github:OWNER/REPO (or gitlab:…): your label table, YAML (`size: l: "
        "{complexity: 7}`); default: docs/operations.md's.",
    )
    imports.add_argument(
        "--every",
        type=_seconds,
        metavar="SECONDS",
        help="With github:OWNER/REPO (or gitlab:…): keep syncing until stopped, a pass every "
        "SECONDS (60 is plenty): on GitHub, two conditional requests when nothing changed, "
        "which it does not count against the rate limit. For where no webhook reaches.",
    )
    imports.add_argument(
        "--landed-label",
        metavar="LABEL",
        help="With github:OWNER/REPO (or gitlab:…): an issue whose task landed gets this label "
        "(default: it is closed); either way a comment names the commit or pull request (merge "
        "request), once, also on an issue its merge closed.",
    )
    imports.add_argument(
        "--forge-api",
        metavar="URL",
        help="With github:OWNER/REPO (or gitlab:…): the API base URL (an Enterprise Server's "
        "https://HOST/api/v3, a GitLab's https://HOST/api/v4; default WVO_FORGE_API, else "
        "GitHub's or gitlab.com's).",
    )
    trust_arguments(imports)
    app_arguments(imports)
    imports.add_argument(
        "--update",
        action="store_true",
        help="Apply an edited roadmap: change the tasks it names and add its new ones. Claimed, "
        "held and done work stays as it is; tasks it leaves out are listed, not deleted.",
    )
    imports.add_argument(
        "--dry-run",
        action="store_true",
        help="With --update: say what would change, and change nothing.",
    )


def _export_arguments(export: argparse.ArgumentParser) -> None:
    export.add_argument("file", nargs="?", help="The file to write (default: YAML to stdout).")


IMPORT = Command("import", cmd_import, _import_arguments)
EXPORT = Command("export", cmd_export, _export_arguments)
SCHEDULES = Command("schedules", cmd_schedules, _schedules_arguments)

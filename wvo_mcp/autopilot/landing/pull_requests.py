"""Landing through pull requests (`--via pull-request`): one per task, merged by the forge.

On GitLab they are merge requests (`--via merge-request` is the same), named so wherever the
queue speaks (rules/pulls.named), its merge train taking the place of GitHub's merge queue.

With `--onto origin/main --via pull-request`, the merge queue verifies each submission
stacked on the target as it always does, then pushes it to the task's branch (wvo/<task>)
and opens, or updates, the task's pull request; the forge's required checks and reviews
decide when it merges, and the merge is a compare-and-swap on exactly the head the queue
verified.

One task per pull request: a reviewer approves, and asks changes of, one change and one
worker; a failing check or a closed pull request holds back that task alone. Where the
forge's limits bound the fleet, batches.py sends several out as one (`--forge-batch`).

Each pull request is looked at (forge.look: one GraphQL query on GitHub) when the forge's
webhook says something that could change its verdict happened (listening.py), and else at
most every `poll` seconds (less often while it waits for a person); where deliveries come,
only every `safety` seconds. What it asks next is
rules/pulls.judge's. A pull
request whose head moved (a person's commit) is verified again and kept; one whose target
moved is restacked, verified and pushed again, once approved and one at a time; what a
reviewer who steers (rules/trust.py) or a required check sends back reaches a worker with
its comments or its log's tail, and anyone else's review is shown to a person and counts
for nothing; a pull request a person closes blocks its task and asks them.

Carries out `rules/pulls.py` (`resume` and `follow`: what a pull request asks for next)."""

import dataclasses
import time
from collections.abc import Sequence
from functools import partial

import anyio

from wvo_mcp.autopilot.landing.listening import Listening
from wvo_mcp.autopilot.landing.steps import Steps
from wvo_mcp.autopilot.landing.target import ForgeReach
from wvo_mcp.autopilot.prompt import source
from wvo_mcp.errors import Fault, LeaseLost, WvoError
from wvo_mcp.forge import Check, Look, Method, Pull, Repository, Requirements, Review
from wvo_mcp.forge.authority import Authority
from wvo_mcp.git import Conflict, branch_name
from wvo_mcp.git.refs import ref_part
from wvo_mcp.rules import issue_tasks, pulls
from wvo_mcp.rules.text import ForgeKind, plain
from wvo_mcp.rules.trust import Trust
from wvo_mcp.services import landing_queue
from wvo_mcp.services import pulls as pull_rows
from wvo_mcp.services.landing_queue import Entry, Landing, Return

POLL_SECONDS = 10.0  # between two looks at one pull request
SAFETY_SECONDS = 600.0  # between two looks where webhooks say when to look
PERSON_POLLS = 6  # waiting for a person, or for the lead: looked at this many times less often
RULES_SECONDS = 600.0  # the branch's protection, read again after this long
PREFERRED: dict[str, tuple[Method, ...]] = {
    "merge": ("merge", "squash", "rebase"),
    "rebase": ("rebase", "squash", "merge"),
}
ACTING = ("APPROVED", "CHANGES_REQUESTED")  # a review that acts, when its author steers
SHOWN = 300  # characters of an outsider's review, as a person is shown it


class PullRequests:
    """The strategy for a forge's target branch: what passes goes out, and lands, as a pull
    request per task."""

    def __init__(
        self, steps: Steps, reach: ForgeReach, poll: float = POLL_SECONDS,
        safety: float = SAFETY_SECONDS,
    ) -> None:  # fmt: skip
        self.steps = steps
        self.reach = reach
        self.forge = reach.forge
        self.poll = poll
        self.safety = safety
        self.ear = Listening(steps.db, reach.forge.kind, steps.now())
        # Whose reviews count: the person's trust (Settings.trust, from WVO_TRUST_ROLE and
        # WVO_TRUST or the command's --trust-role and --trust), each role read from the forge.
        self.authority = Authority(reach.forge, steps.orchestrator.settings.trust)
        self._shown: set[str] = set()  # outsiders' reviews shown to a person, by key
        self._next: dict[int, float] = {}  # landing id -> when to look at its pull request
        self._said: dict[int, str] = {}  # landing id -> what it was last said to wait for
        self._repo: Repository | None = None
        self._rules: tuple[float, Requirements] | None = None
        # The one pull request restacked onto the target and not yet merged: the others wait
        # for it rather than restack now and again after it merges (under a strict policy a
        # merge makes every other head behind).
        self._lead: int | None = None
        self._behind: set[int] = set()  # waiting for the lead: the oldest goes next, at once
        self._enqueued: set[int] = set()  # put in the forge's merge queue by this lander
        self._pulls: dict[int, tuple[int, str]] = {}  # landing id -> its number, verified head
        self._woken: set[int] = set()  # due for a look because a delivery said so
        self._mode: bool | None = None  # whether deliveries come, as last said
        self._opened: list[float] = []  # when each pull request was opened, this hour
        self._bound_at = -3600.0  # when the forge's bound was last said

    @property
    def _noun(self) -> str:
        return pulls.noun(self.forge.kind)

    def _named(self, number: int) -> str:
        """A pull request as its forge names it (rules/pulls.named)."""
        return pulls.named(number, self.forge.kind)

    async def due(self) -> bool:
        """A pass is worth its fetch only with a submission queued or a pull request due for
        another look (their polls are spaced)."""
        if not self.reach.ready():
            self._bound(limited=self.reach.outage.kind == "limited")
            return False  # the forge holds the queue: asked again after its back-off
        if await self.steps.db.read(partial(landing_queue.head, target=self.steps.key, limit=1)):
            return True
        intents = await self.steps.db.read(partial(landing_queue.intents, target=self.steps.key))
        if intents:
            await self._listen()
        return self._looks_due(intents)

    async def _listen(self) -> None:
        """Whatever the forge's webhooks said since the last pass: a pull request whose news
        is worth a look is looked at now (listening.py)."""
        try:
            if not self.ear.repository:
                if self._repo is None:
                    self._repo = await self.reach.call(self.forge.repository)
                await self.ear.start(self._repo.name, self.steps.now())
            required = await self._requirements()
        except Fault:  # said once by the reach: its polls go on when it answers
            return
        for woken in await self.ear.hear(self._pulls, required, self.steps.now()):
            self._at_once(woken)
        followed = {number for number, _ in self._pulls.values()}
        for news in self.ear.unheeded:
            key = f"unheeded:{news.number}:{news.name.lower()}"
            if news.number in followed and key not in self._shown:
                self._shown.add(key)
                who = plain(news.name, 60)  # a login, from a signed delivery: still text
                self.steps.say(f"{who}'s reviews of {self._named(news.number)} wake no look: "
                               f"{who} does not steer")  # fmt: skip
        if self._mode != self.ear.events:
            self._mode = self.ear.events
            self._say_mode()
            if self.ear.events:  # deliveries come: the polls set before make way for them
                later = time.monotonic() + self._spacing()
                for landing_id in set(self._next) - self._woken:
                    self._next[landing_id] = max(self._next[landing_id], later)

    def _say_mode(self) -> None:
        named = f"{self._noun}s on {self.ear.repository}"
        self.steps.say(
            f"webhook deliveries come for {named}: each is looked at when one says it may "
            f"merge or go back, and every {self.safety:g} s regardless"
            if self.ear.events else
            f"no webhook delivery heard for {named} in a day: each open one is looked at "
            f"every {self.poll:g} s (a webhook to `serve --http` saves most of those calls: "
            "docs/forge.md)"
        )  # fmt: skip

    def _bound(self, limited: bool = False) -> None:
        """Said once an hour: when the forge's limits, not the fleet, bound what lands."""
        now = time.monotonic()
        self._opened = [t for t in self._opened if now - t < 3600]
        said = pulls.forge_bound(self.forge.kind, len(self._opened), limited,
                                 self.steps.options.forge_batch)  # fmt: skip
        if said and now - self._bound_at > 3600:
            self._bound_at = now
            self.steps.say(said)

    def _spacing(self, times: int = 1) -> float:
        """Seconds to the next look at a pull request nothing was heard of."""
        return max(self.safety, self.poll * times) if self.ear.events else self.poll * times

    def _soon(self, landing_id: int) -> None:
        """Its head changed: looked at again at once, or, where deliveries come, once they
        say its checks ended."""
        if self.ear.events:
            self._next[landing_id] = time.monotonic() + self._spacing()
        else:
            self._at_once(landing_id)

    def _at_once(self, landing_id: int) -> None:
        """Looked at on the next pass, in full (not the safety net's quick read)."""
        self._next.pop(landing_id, None)
        self._woken.add(landing_id)

    def _looks_due(self, intents: Sequence[Landing]) -> bool:
        """Whether any open pull request is due for another look."""
        now = time.monotonic()
        return any(now >= self._next.get(i.id, 0.0) for i in intents)

    # -- proposing -----------------------------------------------------------------------

    async def land(self, fence: int, entries: Sequence[Entry]) -> bool:
        """Each entry stacked on the target's tip by itself and verified there; each that
        passes goes out as its task's pull request."""
        old = await self.steps.tip()
        lost: list[LeaseLost] = []

        async def one(item: Entry) -> None:
            intended = False
            try:
                found = await self.steps.in_repo(self.steps.stack, old, item)
                if isinstance(found, Conflict):
                    await self.steps.conflict(fence, item, found, old)
                    return
                if found == old:
                    await self.steps.land_empty(fence, item, old)
                    return
                verdict = await self.steps.verify(found, [item])
                if not verdict.passed:
                    base = await self.steps.base(old) if verdict.project_failed else None
                    if base is not None and not base.passed:  # red by itself: nobody's fault
                        self.steps.turned_red(old, base)
                        await self.steps.unstart(fence, [item.id])
                        return
                    await self.steps.fail(fence, item, verdict, old)
                    return
                tree = await self.steps.in_repo(self.steps.git.tree_of, found)
                landing_id = await self.steps.intend(fence, old, found, tree, verdict, [item])
                intended = True
                await self._publish(fence, landing_id, item, found, verdict.checks, tree)
            except LeaseLost as exc:  # raised once the group ends (it would come as a group)
                lost.append(exc)
            except WvoError as exc:  # the remote, the forge, git or the sandbox failed us
                if not isinstance(exc, Fault):
                    self.steps.say(f"{item.task_id}: landing through a {self._noun} waits: {exc}")
                if not intended:  # else its intent is followed, and published, later
                    await self.steps.unstart(fence, [item.id])

        async with anyio.create_task_group() as group:
            for item in entries:
                group.start_soon(one, item)
        if lost:
            raise lost[0]
        return True

    async def _publish(
        self, fence: int, landing_id: int, item: Entry, head: str, checks: str, tree: str
    ) -> None:
        """`head` onto the task's branch (leased on what the queue pushed there last, so a
        person's commit is never overwritten), and its pull request opened or updated."""
        steps = self.steps
        reach = steps.target.reach
        assert reach is not None
        branch = branch_name(item.task_id)
        row = await self.steps.db.read(
            partial(pull_rows.pull_of, target=steps.key, task_id=item.task_id)
        )
        open_ = row is not None and row.state == "open"
        if row is not None and open_ and row.landing_id != landing_id:  # it came back before
            earlier = await self.reach.call(self.forge.pull, row.number)
            if earlier.state == "closed" and not earlier.merged:  # by a person, meanwhile
                await self._closed(fence, landing_id, item, earlier)
                return
            open_ = earlier.state == "open"
        # An open pull request's branch moves only from what the queue pushed there; a new
        # one's must not exist yet (or hold this very head: pushed before a crash); a closed
        # or merged one's (or one the forge deleted) is the queue's to reuse.
        expected = ""
        if row is not None:
            expected = row.head if open_ else (await self._fetch(branch) or "")
        if not await self._push(branch, head, expected):
            back = Return(f"returned: {branch} on the remote has commits the queue did not "
                          "push", "")  # fmt: skip
            await steps.send_back(fence, item, back, [], hold="someone pushed to its branch",
                                    was="landing")  # fmt: skip
            return
        summary = await self._summary(item, checks, tree)
        title, body = pulls.title(summary), pulls.body(summary, self.forge.kind)
        if row is not None and open_:
            await self.reach.call(self.forge.edit, row.number, title, body)
            number, url = row.number, row.url
        else:
            found = await self._open(branch, title, body)
            number, url = found.number, found.url
        self._pulls[landing_id] = (number, head)
        # Its checks have just started: the first look a poll later, or when a delivery says.
        self._next[landing_id] = time.monotonic() + self._spacing()
        await self.steps.db.write(
            partial(
                pull_rows.pull_opened,
                target=steps.key,
                run=steps.run_id,
                fence=fence,
                task_id=item.task_id,
                number=number,
                url=url,
                branch=branch,
                head=head,
                landing_id=landing_id,
                now=steps.now(),
            )
        )
        steps.say(f"{item.task_id}: {self._named(number)} carries it: {url}")

    async def _open(self, branch: str, title: str, body: str) -> Pull:
        """A new pull request from `branch`; or the one opened before a crash kept it from
        being recorded (the forge refuses a second), updated."""
        base = self.steps.target.branch
        self._opened.append(time.monotonic())
        self._bound()
        try:
            return await self.reach.call(self.forge.open, branch, base, title, body)
        except Fault as exc:
            if exc.kind != "refused" or "already exists" not in str(exc):
                raise
            found = await self.reach.call(self.forge.find, branch, base)
            if found is None or found.state != "open":
                raise
            await self.reach.call(self.forge.edit, found.number, title, body)
            return found

    async def _push(self, branch: str, head: str, expected: str) -> bool:
        """`head` onto the remote's `branch`, only from `expected` ('' : no such branch).
        False: the branch holds something else (someone pushed there)."""
        reach = self.steps.target.reach
        assert reach is not None
        ref = f"refs/heads/{branch}"
        pushed = await reach.call(reach.remote.push, [f"{head}:{ref}"], [f"{ref}:{expected}"])
        result = pushed.get(ref)
        if result is None or result.ok:
            return True
        return await self._fetch(branch) == head  # pushed already, by this queue before a crash

    async def _fetch(self, branch: str) -> str | None:
        reach = self.steps.target.reach
        assert reach is not None
        local = f"refs/wvo/pulls/{ref_part(branch)}"
        try:
            await reach.call(reach.remote.fetch, [f"+refs/heads/{branch}:{local}"])
        except Fault as exc:
            if exc.kind == "missing":
                return None
            raise
        return await self.steps.in_repo(self.steps.git.ref_tip, local)

    async def _summary(self, item: Entry, checks: str, tree: str) -> pulls.Summary:
        task = await self.steps.orchestrator.get_task(item.task_id)
        review = await self.steps.orchestrator.latest_review(item.task_id, item.commit)
        said = "" if review is None else f"{review.reviewer}: {review.verdict}. {review.notes}"
        links = [
            str(v)
            for k, v in sorted(task.metadata.items())
            if k in ("issue", "url", "link") and isinstance(v, str)
        ]
        cost = await self.steps.db.read(partial(landing_queue.task_spend, task_id=item.task_id))
        born = task.metadata.get("forge_issue")
        closes = ""
        if isinstance(born, dict) and isinstance(born.get("number"), int):
            if self._repo is None:
                self._repo = await self.reach.call(self.forge.repository)
            # Only the issue of this repository the task is (its id says so: the sync's and
            # the webhook's), never one its metadata names alone: any agent may write that.
            number = issue_tasks.number_of(self._repo.name.lower(), item.task_id.lower(),
                                           self.forge.kind)  # fmt: skip
            closes = f"#{number}" if number == born["number"] else ""
        return pulls.Summary(item.task_id, task.title, task.description, checks, said, cost,
                             links, closes, source(task.metadata), tree)  # fmt: skip

    # -- following -------------------------------------------------------------------------

    async def resume(self, fence: int, intent: Landing) -> bool | None:
        """A landing whose pull request is out: followed (True: something moved), unless the
        target has it already (a person pushed it there), which completes it."""
        steps = self.steps
        tip = await steps.tip()
        if not (tip == intent.new or await steps.in_repo(steps.git.contains, intent.new, tip)):
            return await self.follow(fence, intent)
        await self.reached(intent)  # a person brought it onto the target
        await steps.complete(intent.id, intent.new)
        return True

    async def follow(self, fence: int, intent: Landing) -> bool:
        """One look at the pull request that carries `intent`, and what it asks for next.
        True when something moved."""
        steps = self.steps
        found = await steps.db.read(partial(landing_queue.entries_of, landing_id=intent.id))
        if not found:
            return False  # a person moved its task: the lander abandons it
        item = found[0]  # (a batch's first: each of its tasks' rows names its pull request)
        row = await self.steps.db.read(
            partial(pull_rows.pull_of, target=steps.key, task_id=item.task_id)
        )
        if row is None or row.landing_id != intent.id:  # a crash before it went out
            await self._out_again(fence, intent, found)
            return True
        self._pulls[intent.id] = (row.number, intent.new)
        now = time.monotonic()
        if now < self._next.get(intent.id, 0.0):
            return False
        self._woken.discard(intent.id)
        self._next[intent.id] = now + self._spacing()
        tip = await steps.tip()
        current = tip == intent.new or await steps.in_repo(steps.git.contains, tip, intent.new)
        if not current and self._lead not in (None, intent.id):
            # Behind the target while another is restacked onto it: whatever it asks, it is
            # restacked or told only once that one is done (_release); no look till then.
            self._behind.add(intent.id)
            self._next[intent.id] = now + self._spacing(PERSON_POLLS)
            await self._waits(intent, item, row, f"waiting for the {self._noun} restacked "
                              "before it to merge; looked at and restacked then")  # fmt: skip
            return False
        released = intent.id in self._behind
        self._behind.discard(intent.id)
        required = await self._requirements()
        look = await self.reach.call(self.forge.look, row.number, required)
        pull = look.pull
        next_, approvers = await self._judge(item.task_id, look, intent.new, current, required)
        self.ear.looked(intent.id, intent.new, approvers)
        if released and next_.kind != "behind" and self._lead is None:
            self._release()  # it was let go first but is not restacked: the next one is
        return await self._act(fence, intent, found, pull, next_, required)

    async def _out_again(self, fence: int, intent: Landing, items: Sequence[Entry]) -> None:
        """Its pull request opened (or updated) again: a crash came between."""
        if len(items) == 1:
            await self._publish(fence, intent.id, items[0], intent.new, intent.checks,
                                intent.tree)  # fmt: skip

    async def _act(
        self, fence: int, intent: Landing, items: Sequence[Entry], pull: Pull,
        next_: pulls.Next, required: Requirements,
    ) -> bool:  # fmt: skip
        """What one look found asked for, done: merged, returned, restacked, waited for."""
        if len(items) != 1:
            return False  # a batch, which only batches.py follows
        item = items[0]
        now = time.monotonic()
        if next_.kind == "landed":
            return await self._landed(intent, item, pull)
        if next_.kind == "closed":
            return await self._closed(fence, intent.id, item, pull)
        if next_.kind == "moved":
            return await self._moved(fence, intent, item, pull)
        if next_.kind == "behind":
            return await self._restack(fence, intent, item, pull, pull.head)
        if next_.kind in ("failed", "changes"):
            return await self._returned(fence, intent, item, pull, next_)
        if next_.kind == "waiting":
            if next_.person:  # people answer in minutes or hours, checks in seconds
                self._next[intent.id] = now + self._spacing(PERSON_POLLS)
                if self._lead == intent.id:
                    self._release()
            await self._waits(intent, item, pull, next_.why)
            return False
        if required.merge_queue:
            return await self._queue(fence, intent, item, pull)
        return await self._merge(intent, item, pull)

    async def _judge(
        self, task_id: str, look: Look, verified: str, current: bool, required: Requirements
    ) -> tuple[pulls.Next, frozenset[str] | None]:
        """What the pull request asks for next, from one look: its reviews judged once no
        required check runs on a current head (a person is waited for longer than a check);
        with the approvals it counted then (None: not judged)."""
        pull = look.pull
        checks: list[Check] = []
        reviews: list[Review] | None = []
        steer: frozenset[str] = frozenset()
        approvers: frozenset[str] | None = None
        if pull.state == "open" and pull.head == verified:
            checks = list(look.checks)
            states = {c.name: c.state for c in checks}
            running = current and pulls.unfinished(required, checks)
            failed = "failure" in (states.get(n) for n in required.checks)
            reviews = None if running and not failed else list(look.reviews)
            if reviews:
                steer = await self._steering(task_id, pull, reviews, look.writers)
            if reviews is not None:
                approvers = pulls.approvers(reviews, steer)
        return pulls.judge(pull, verified, current, required, checks, reviews, steer,
                           self.forge.kind), approvers  # fmt: skip

    async def _steering(
        self, task_id: str, pull: Pull, reviews: Sequence[Review], writers: frozenset[str] | None
    ) -> frozenset[str]:
        """The reviewers whose reviews count (rules/trust.py): under the default rule, where
        the look says who may push (`writers`), those; else each asked of the forge. Anyone
        else's approval or request for changes goes to no worker and counts for nothing; it is
        shown to a person, on the task and in the inbox, once per review."""
        trust = self.authority.trust
        authors = sorted({r.author for r in reviews if r.state in ACTING})
        if writers is not None and trust == Trust():
            steer = frozenset(a for a in authors
                              if trust.steers(a, "write" if a in writers else "none"))  # fmt: skip
        else:
            steer = frozenset([a for a in authors
                               if await self.reach.call(self.authority.steers, a)])  # fmt: skip
        self.ear.outsiders.update(a.lower() for a in authors if a not in steer)
        self.ear.outsiders.difference_update(a.lower() for a in steer)
        for review in reviews:
            # A review's id is unique on its forge's repository only.
            key = f"review:{self.forge.kind}:{self.forge.where}:{review.id}"
            if review.author in steer or review.state not in ACTING or key in self._shown:
                continue
            await self.steps.orchestrator.outsider_said(
                task_id,
                review.author,
                _outsider(review, pull, self.forge.kind),
                review.url,
                key=key,
            )
            self._shown.add(key)
            self.steps.say(
                f"{task_id}: {review.author}'s review of {self._named(pull.number)} is not "
                f"counted ({review.author} does not steer; docs/forge.md): shown in "
                "`wvo-mcp inbox`"
            )
        return steer

    async def reached(self, intent: Landing) -> None:
        """The target has what `intent` lands without its pull request being merged (a
        person pushed it there): the pull request is no longer followed."""
        for item in await self.steps.db.read(
            partial(landing_queue.entries_of, landing_id=intent.id)
        ):
            await self.steps.db.write(
                partial(pull_rows.pull_ended, target=self.steps.key, task_id=item.task_id,
                        state="merged", now=self.steps.now())
            )  # fmt: skip
        self._forget(intent.id)

    async def _requirements(self) -> Requirements:
        now = time.monotonic()
        if self._rules is None or now - self._rules[0] > RULES_SECONDS:
            found = await self.reach.call(self.forge.requirements, self.steps.target.branch)
            self._rules = (now, found)
            self.ear.outsiders.clear()  # a reader made a writer is heard again
        return self._rules[1]

    async def _waits(
        self, intent: Landing, item: Entry, pull: Pull | pull_rows.PullRow, why: str
    ) -> None:
        if self._said.get(intent.id) == why:
            return
        self._said[intent.id] = why
        self.steps.say(f"{item.task_id}: {self._named(pull.number)} is {why}: {pull.url}")
        await self.steps.db.write(
            partial(
                pull_rows.pull_waits,
                target=self.steps.key,
                task_id=item.task_id,
                waiting=why,
                now=self.steps.now(),
            )
        )

    async def _merge(self, intent: Landing, item: Entry, pull: Pull) -> bool:
        if self._repo is None:
            self._repo = await self.reach.call(self.forge.repository)
        method = next((m for m in self._preferred(intent) if m in self._repo.methods), None)
        if method is None:
            await self._waits(intent, item, pull, "waiting: the repository allows no merge method")
            return False
        merged = await self.reach.call(
            self.forge.merge,
            pull.number,
            intent.new,
            method,
            self._merge_title(intent, item, pull),
            f"wvo-mcp merge queue: {item.commit}\n\nVerified on tree {intent.tree}: "
            f"{intent.checks}",
        )
        if merged.merged:
            return await self._landed(intent, item, pull)
        if not merged.moved:
            await self._waits(intent, item, pull, f"not merged yet: {merged.why}")
        self._at_once(intent.id)  # moved
        return False

    def _preferred(self, intent: Landing | None = None) -> tuple[Method, ...]:
        """Merge methods, most wanted first (for `intent`'s pull request)."""
        return PREFERRED["rebase" if self.steps.options.strategy == "rebase" else "merge"]

    def _merge_title(self, intent: Landing, item: Entry, pull: Pull) -> str:
        return (f"Land {item.task_id} ({item.author}) onto {self.steps.onto} "
                f"({pulls.reference(pull.number, self.forge.kind)})")  # fmt: skip

    async def _queue(self, fence: int, intent: Landing, item: Entry, pull: Pull) -> bool:
        """The branch merges only through the forge's queue (GitHub's merge queue, GitLab's
        merge train): the pull request joins it, at exactly the head the queue verified, and
        the forge merges it from there. One that left it unmerged goes back to a worker."""
        state = await self.reach.call(self.forge.queued, pull)
        if state is not None:
            queue = pulls.queue_name(self.forge.kind)
            await self._waits(intent, item, pull, f"in the {queue} ({state.lower()})")
            return False
        if intent.id in self._enqueued:  # it left the queue: merged, or its merge group failed
            # It may have merged since `pull` was read (GitLab's car reads `merged` then).
            now = await self.reach.call(self.forge.pull, pull.number)
            if now.merged:
                return await self._landed(intent, item, now)
            self._enqueued.discard(intent.id)
            failed = await self.reach.call(self.forge.dropped, pull)
            dropped = pulls.dequeued(pull, self.forge.kind, failed)
            return await self._returned(fence, intent, item, pull, dropped)
        found = await self.reach.call(self.forge.enqueue, pull, intent.new)
        if found.moved:
            self._at_once(intent.id)
            return False
        if found.why:
            await self._waits(intent, item, pull, f"not queued yet: {found.why}")
            return False
        self._enqueued.add(intent.id)
        await self._waits(intent, item, pull, f"added to the {pulls.queue_name(self.forge.kind)}")
        return False

    async def _landed(self, intent: Landing, item: Entry, pull: Pull) -> bool:
        """Merged, by the queue or by a person: its landing completes, once."""
        steps = self.steps
        await steps.refresh()
        await steps.complete(intent.id, await steps.tip())
        await self.steps.db.write(
            partial(
                pull_rows.pull_ended,
                target=steps.key,
                task_id=item.task_id,
                state="merged",
                now=steps.now(),
            )
        )
        self._forget(intent.id)
        return True

    async def _closed(self, fence: int, landing_id: int, item: Entry, pull: Pull) -> bool:
        steps = self.steps
        question = (
            f"{self._named(pull.number).capitalize()} ({pull.url}) of task {item.task_id} was "
            "closed without a merge, so nothing of it landed. Answer to have it worked on again "
            f"(say what to change; its next submission opens a new {self._noun}), or cancel it."
        )
        asked = await self.steps.db.write(
            partial(
                pull_rows.closed_by_person,
                settings=steps.orchestrator.settings,
                target=steps.key,
                run=steps.run_id,
                fence=fence,
                entry_id=item.id,
                question=question,
                now=steps.now(),
            )
        )
        if asked:
            steps.say(
                f"{item.task_id} is blocked: a person closed {self._named(pull.number)}; "
                "they are asked in `wvo-mcp inbox`"
            )
        self._forget(landing_id)
        return True

    async def _moved(self, fence: int, intent: Landing, item: Entry, pull: Pull) -> bool:
        """Someone pushed to its branch: their commits are kept, and what lands now is
        verified again before it can merge."""
        steps = self.steps
        head = await self._fetch(pull.branch)
        if head is None or head != pull.head:
            return False  # it moves still: look again later
        steps.say(
            f"{item.task_id}: {self._named(pull.number)} has a commit the queue did not "
            f"push ({head[:12]}): kept, and verified again before it merges"
        )
        tip = await steps.tip()
        if not await steps.in_repo(steps.git.contains, tip, head):
            return await self._restack(fence, intent, item, pull, head)
        verdict = await steps.verify(head, [item])
        if not verdict.passed:
            await steps.fail(
                fence,
                item,
                verdict,
                tip,
                was="landing",
                hold=f"a commit pushed to {self._named(pull.number)}'s branch "
                "fails the queue's check",
            )
            self._forget(intent.id)
            return True
        await self._carries(fence, intent, item, pull, tip, head, verdict.checks)
        return True

    async def _carries(
        self, fence: int, intent: Landing, item: Entry, pull: Pull, old: str, new: str,
        checks: str,
    ) -> None:  # fmt: skip
        """Its landing lands `new` (on `old`) now, verified, and its text says so (the tree
        its checks passed on): looked at again at once. The text first: should either fail,
        the next look finds the head moved and verifies it again."""
        steps = self.steps
        tree = await steps.in_repo(steps.git.tree_of, new)
        summary = await self._summary(item, checks, tree)
        await self.reach.call(self.forge.edit, pull.number, pulls.title(summary),
                              pulls.body(summary, self.forge.kind))  # fmt: skip
        await steps.db.write(
            partial(pull_rows.pull_moved, target=steps.key, run=steps.run_id, fence=fence,
                    task_id=item.task_id, landing_id=intent.id, old=old, new=new, tree=tree,
                    checks=checks, now=steps.now())
        )  # fmt: skip
        self._pulls[intent.id] = (pull.number, new)  # what is heard of it now is of `new`
        self._soon(intent.id)

    async def _restack(
        self, fence: int, intent: Landing, item: Entry, pull: Pull, head: str
    ) -> bool:
        """The target moved past what its pull request carries: its head stacked on the new
        tip, verified, and pushed (leased on the head it replaces)."""
        steps = self.steps
        tip = await steps.tip()
        source = dataclasses.replace(item, commit=head)
        found = await steps.in_repo(steps.stack, tip, source)
        if isinstance(found, Conflict):
            await steps.conflict(fence, item, found, tip, was="landing")
            self._forget(intent.id)
            return True
        verdict = await steps.verify(found, [item])
        if not verdict.passed:
            await steps.fail(fence, item, verdict, tip, was="landing")
            self._forget(intent.id)
            return True
        if not await self._push(pull.branch, found, head):
            self._at_once(intent.id)  # someone pushed meanwhile
            return False
        await self._carries(fence, intent, item, pull, tip, found, verdict.checks)
        self._lead = intent.id
        self._behind.discard(intent.id)
        steps.say(
            f"{item.task_id}: {steps.onto} moved; its {self._noun} is restacked onto "
            f"{tip[:12]} and verified again"
        )
        return True

    async def _returned(
        self, fence: int, intent: Landing, item: Entry, pull: Pull, found: pulls.Next
    ) -> bool:
        steps = self.steps
        summary, details, files = pulls.returned(found, pull, self.forge.kind)
        back = Return(summary, details, files, await steps.tip())
        await steps.send_back(fence, item, back, [], was="landing")
        await self.steps.db.write(
            partial(
                pull_rows.pull_ended,
                target=steps.key,
                task_id=item.task_id,
                state="open",
                now=steps.now(),
                waiting=f"with a worker: {summary}",
            )
        )
        await self.reach.call(
            self.forge.comment_pull,
            pull.number,
            f"The merge queue returned this to a worker: {plain(found.why)}. Its next submission "
            f"updates this {self._noun}.",
        )
        self._forget(intent.id)
        return True

    def _release(self) -> None:
        """The lead merged, went back, or waits for a person: the oldest pull request behind
        it is looked at at once (and restacked)."""
        self._lead = None
        if self._behind:
            self._at_once(min(self._behind))

    def _forget(self, landing_id: int) -> None:
        self.ear.forget(landing_id)
        self._pulls.pop(landing_id, None)
        self._woken.discard(landing_id)
        self._behind.discard(landing_id)
        self._enqueued.discard(landing_id)
        self._next.pop(landing_id, None)
        if self._lead in (None, landing_id):  # the next behind goes, whether it led or not
            self._release()
        self._said.pop(landing_id, None)


def _outsider(review: Review, pull: Pull, kind: ForgeKind) -> str:
    """What a person is shown of a review by someone who does not steer: what it would have
    done, and its words, cut short (the link has the rest)."""
    did = "approved" if review.state == "APPROVED" else "requested changes on"
    lines = [review.body, *(f"{c.path}" + (f":{c.line}" if c.line else "") + f": {c.body}"
                            for c in review.comments)]  # fmt: skip
    said = " / ".join(" ".join(line.split()) for line in lines if line.strip())
    words = plain(said, SHOWN) if said else "(no text)"  # no terminal escapes in the inbox
    return f"{did} {pulls.named(pull.number, kind)}, not counted (they do not steer): {words}"

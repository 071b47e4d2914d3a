"""The issues area: webhook deliveries and issue conversations (services/webhooks, issue_sync).

What a GitHub delivery does to the tasks it names, and edge/issue_sync.py's sync of an issue's
comments with its task."""

from functools import partial

from wvo_mcp.models import Unsynced
from wvo_mcp.orchestrator.base import Facade
from wvo_mcp.rules import issue_tasks
from wvo_mcp.rules.issue_tasks import Issue, IssueComment
from wvo_mcp.rules.pull_news import News
from wvo_mcp.rules.text import ForgeKind
from wvo_mcp.rules.webhooks import Run
from wvo_mcp.services import issue_conversation, pull_news, webhooks
from wvo_mcp.store import Lock, Row


class IssuesFacade(Facade):
    async def delivered_issue(
        self, delivery: str, digest: str, repository: str, issue: Issue, label: str,
        kind: ForgeKind = "github",
    ) -> str:  # fmt: skip
        """An `issues` delivery from forge `kind`: its issue's task kept in step
        (services/webhooks)."""
        return await self.db.write(
            partial(webhooks.issue_event, settings=self.settings, delivery=delivery,
                    digest=digest, repository=repository, issue=issue, label=label,
                    table=issue_tasks.LABELS, now=self.clock(), kind=kind)
        )  # fmt: skip

    async def delivered_run(
        self, delivery: str, digest: str, run: Run, contained: frozenset[str]
    ) -> str:
        """A GitHub `workflow_run` or `check_suite` delivery on the landing branch
        (services/webhooks)."""
        return await self.db.write(
            partial(webhooks.red_run, settings=self.settings, delivery=delivery,
                    digest=digest, run=run, contained=contained, now=self.clock())
        )  # fmt: skip

    async def heard_pulls(
        self, delivery: str, digest: str, event: str, kind: ForgeKind, repository: str,
        news: list[News],
    ) -> None:  # fmt: skip
        """A delivery's news of pull requests, for the queue that follows them
        (services/pull_news)."""
        await self.db.write(
            partial(pull_news.heard, delivery=delivery, digest=digest, event=event, kind=kind,
                    repository=repository, news=news, now=self.clock())
        )  # fmt: skip

    async def delivered(self, delivery: str, event: str, digest: str) -> None:
        """A delivery nothing acts on, recorded so a replay of it is refused alike."""
        await self.db.write(
            partial(webhooks.ignored, delivery=delivery, event=event, digest=digest,
                    now=self.clock())
        )  # fmt: skip

    async def red_tasks(self, run: Run) -> dict[str, list[str]]:
        """The open red tasks of `run`'s workflow or app, with the commits each was red at."""
        return await self.db.read(partial(webhooks.red_tasks, run=run))

    async def synced_repositories(self) -> list[str]:
        """The repositories `import github:` synced here (the webhook serves them)."""
        return await self.db.read(issue_conversation.synced)

    # An issue's conversation with its task (edge/issue_sync.py; services/issue_conversation).

    async def forge_claim(self, key: str) -> bool:
        return await self.db.write(partial(issue_conversation.claim, key=key, now=self.clock()))

    async def forge_done(self, key: str, at: str) -> None:
        await self.db.write(partial(issue_conversation.done, key=key, at=at, now=self.clock()))

    async def forge_release(self, key: str) -> None:
        await self.db.write(partial(issue_conversation.release, key=key))

    async def unsynced(self, repository: str) -> list[Unsynced]:
        return await self.db.read(partial(issue_conversation.unsynced, repository=repository))

    async def keep_unsynced(self, repository: str, found: list[Unsynced]) -> None:
        await self.db.write(
            partial(issue_conversation.keep_unsynced, repository=repository, found=found)
        )

    async def forge_post(self, key: str) -> Row | None:
        return await self.db.read(partial(issue_conversation.post_of, key=key))

    async def tasks_under(self, prefix: str) -> dict[str, str]:
        """Each task whose id starts with `prefix`, and its status."""
        return await self.db.read(partial(issue_conversation.statuses, prefix=prefix))

    async def questions_under(self, prefix: str) -> list[Row]:
        return await self.db.read(partial(issue_conversation.questions, prefix=prefix))

    async def task_landed(self, task_id: str) -> Row | None:
        return await self.db.read(partial(issue_conversation.landed, task_id=task_id))

    async def issue_comment(self, task_id: str, said: IssueComment, kind: str, text: str) -> str:
        return await self.db.write(
            partial(issue_conversation.comment, settings=self.settings, task_id=task_id, said=said,
                    kind=kind, text=text, now=self.clock()),
            Lock.TASK,
        )  # fmt: skip

    async def outsider_said(
        self, task_id: str, who: str, what: str, url: str, key: str = ""
    ) -> None:
        await self.db.write(
            partial(issue_conversation.outsider, task_id=task_id, who=who, what=what, url=url,
                    key=key, now=self.clock()),
            Lock.TASK,
        )  # fmt: skip

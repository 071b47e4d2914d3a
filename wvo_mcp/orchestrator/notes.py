"""The notes area: a person's hand on a running fleet (services/notes, services/pauses).

Messages, drains, pauses, redirects and questions (issue 46); `notes_for` is read on
every tool call, so it writes only when there is something to give."""

from functools import partial

from wvo_mcp.models import Inbox, Note, PauseResult, Told, UpdateResult
from wvo_mcp.orchestrator.base import Facade
from wvo_mcp.rules.pauses import Scope
from wvo_mcp.services import notes, pauses
from wvo_mcp.store import Lock


class NotesFacade(Facade):
    async def tell(self, scope: Scope, key: str, text: str, by: str) -> Told:
        """A person's message to a task's holders, an epic's, or the fleet's."""
        return await self.db.write(
            partial(notes.tell, scope=scope, key=key, text=text, author=by, now=self.clock())
        )

    async def drain(self, held: list[tuple[str, str]], by: str) -> list[str]:
        """An autopilot's drain, told to each of its workers (task, agent) still holding."""
        return await self.db.write(partial(notes.drain, held=held, author=by, now=self.clock()))

    async def pause(
        self, scope: Scope, key: str, by: str, reason: str | None = None
    ) -> PauseResult:
        return await self.db.write(
            partial(pauses.pause, scope=scope, key=key, reason=reason, author=by, now=self.clock())
        )

    async def resume(self, scope: Scope, key: str, by: str) -> PauseResult:
        return await self.db.write(
            partial(pauses.resume, scope=scope, key=key, author=by, now=self.clock())
        )

    async def redirect(
        self,
        task_id: str,
        by: str,
        *,
        description: str | None = None,
        verify_command: str | list[str] | None = None,
        restart: bool = False,
    ) -> UpdateResult:
        return await self.db.write(
            partial(notes.redirect, settings=self.settings, task_id=task_id, author=by,
                    now=self.clock(), description=description, verify_command=verify_command,
                    restart=restart)
        )  # fmt: skip

    async def ask(self, task_id: str, token: str, agent_id: str, question: str) -> UpdateResult:
        """The holder's question to a person: its task waits in blocked for the answer."""
        return await self.db.write(
            partial(notes.ask, settings=self.settings, task_id=task_id, token=token,
                    agent_id=agent_id, question=question, now=self.clock()),
            Lock.TASK,
        )  # fmt: skip

    async def answer(self, task_id: str, text: str, by: str) -> UpdateResult:
        return await self.db.write(
            partial(notes.answer, settings=self.settings, task_id=task_id, text=text, author=by,
                    now=self.clock())
        )  # fmt: skip

    async def inbox(self) -> Inbox:
        return await self.db.read(notes.inbox)

    async def notes_for(self, agent_id: str) -> list[Note]:
        """What a person left for this agent's held tasks since it was last told: read on
        every tool call, written only when there is something to give."""
        # One statement: on PostgreSQL one round trip a call, with no transaction around it.
        if not await self.db.read(partial(notes.due, agent_id=agent_id), snapshot=False):
            return []
        return await self.db.write(partial(notes.deliver, agent_id=agent_id), Lock.TASK)

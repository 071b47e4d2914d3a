"""Words between people and agents about tasks: notes, pauses, questions, the inbox.

Their own area (tell, pause, ask, answer, inbox), apart from the tasks they are about:
TaskDetail embeds a task's notes, so tasks imports notes and never the other way.
"""

from typing import Literal

from pydantic import BaseModel, Field


class Note(BaseModel):
    """A person's message to a task's holder, an agent's question, a person's answer, or
    the autopilot's drain (to the worker it runs on the task)."""

    task_id: str
    kind: Literal["tell", "pause", "redirect", "question", "answer", "drain"]
    text: str
    author: str
    at: str

    @property
    def an_agents(self) -> bool:
        """An agent's words (its question): context, never a person's to follow. A person
        (or the autopilot, for a drain) writes every other kind."""
        return self.kind == "question"


class Told(BaseModel):
    tasks: list[str] = Field(description="The tasks whose holders (now or next) receive it")
    message: str


class PauseResult(BaseModel):
    scope: Literal["task", "epic", "fleet"]
    key: str
    paused: bool = Field(description="Whether it is paused now")
    told: list[str] = Field(description="Tasks whose holders were told to checkpoint and stop")
    message: str


class Question(BaseModel):
    task_id: str
    title: str
    question: str
    asked_by: str
    asked_at: str


class Outsider(BaseModel):
    """Words on the forge from someone who does not steer (rules/trust.py): shown, never
    acted on."""

    task_id: str
    title: str
    who: str
    said: str
    at: str


class Unsynced(BaseModel):
    """An open issue the sync could not apply (edge/issue_sync.py), and why."""

    repository: str
    issue: int
    task: str
    why: str
    made: bool = Field(description="Its task exists, and stays as it was")
    since: str


class Inbox(BaseModel):
    questions: list[Question]
    outsiders: list[Outsider] = Field(
        default_factory=list, description="Newest first: reviews and comments not acted on"
    )

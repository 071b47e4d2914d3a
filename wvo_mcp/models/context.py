"""The shared context's sections, as context_read and context_write take and give them.

A section's name is typed here so that each tool refuses a bad one the same way.
"""

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

SectionName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.-]*$"),
    Field(description="Section name: letters, digits, space, _ . - (e.g. decisions)"),
]


class ContextSection(BaseModel):
    name: str
    version: int
    content: str
    updated_by: str
    updated_at: str


class ContextReadResult(BaseModel):
    sections: list[ContextSection]
    total_bytes: int


class ContextWriteResult(BaseModel):
    section: str
    version: int
    size_bytes: int
    total_bytes: int = Field(description="All sections together, after this write")


class ContextVersion(BaseModel):
    version: int
    mode: Literal["replace", "append"]
    author: str
    at: str
    size_bytes: int

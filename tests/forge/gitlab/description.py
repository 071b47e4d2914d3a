"""A placeholder for the check of the test GitLab's requests and answers: it finds nothing.

The validator built from GitLab's Go client's typed description replaces this file at merge
(issue 72); until then it keeps the API the test GitLab calls, so the server records what the
real one finds in `violations` without a change."""

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Description:
    def request(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> list[str]:
        """What is wrong with a request (nothing, here)."""
        return []

    def answer(self, method: str, path: str, status: int, body: Any) -> list[str]:
        """What is wrong with an answer (nothing, here)."""
        return []


def load() -> Description:
    return Description()

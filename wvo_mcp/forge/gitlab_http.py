"""One request to GitLab's REST API: counted, never slept on or retried, each failure a Fault.

python-gitlab brings the auth headers, URL building and error types; here its own sleeping
on 429 and its retries are off, so a rate limit or an outage is a Fault carrying how long
GitLab asked us to wait, and the queue holds that long (autopilot/landing/target.py's
ForgeReach). The session counts each request (`calls`, for BENCHMARKS.md) and keeps the last
answer's Retry-After and RateLimit-Reset, which python-gitlab's errors do not carry."""

import threading
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

import gitlab
import requests
from gitlab.exceptions import GitlabAuthenticationError, GitlabHttpError

from wvo_mcp.errors import Fault
from wvo_mcp.forge import credentials, faults

PAGE = 100


class Session(requests.Session):
    """A requests session that counts what it sends and keeps, per thread, the last answer's
    rate-limit headers."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self._count = threading.Lock()
        self.last = threading.local()

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        with self._count:
            self.calls += 1
        self.last.headers = {}
        answer = super().request(method, url, *args, **kwargs)
        self.last.headers = dict(answer.headers)
        return answer

    def rebuild_auth(
        self, prepared_request: requests.PreparedRequest, response: requests.Response
    ) -> None:
        """requests drops only Authorization on a redirect to another host; python-gitlab's
        token travels as PRIVATE-TOKEN (or JOB-TOKEN), so those go too."""
        # types-requests leaves these two untyped.
        super().rebuild_auth(prepared_request, response)  # type: ignore[no-untyped-call]
        came, goes = str(response.request.url), str(prepared_request.url)
        if self.should_strip_auth(came, goes):  # type: ignore[no-untyped-call]
            for name in ("PRIVATE-TOKEN", "JOB-TOKEN", "Authorization"):
                prepared_request.headers.pop(name, None)

    def retry_after(self) -> float | None:
        """Seconds the last answer on this thread asked for (Retry-After, else the time to
        RateLimit-Reset), None when it named none."""
        headers: Mapping[str, str] = getattr(self.last, "headers", {})
        found = {k.lower(): v for k, v in headers.items()}
        try:
            if "retry-after" in found:
                return max(1.0, float(found["retry-after"]))
            if "ratelimit-reset" in found:
                return max(1.0, float(found["ratelimit-reset"]) - time.time())
        except ValueError:
            return None
        return None


class Api:
    """GitLab's REST API at `api` (`https://host/api/v4`), asked with one token, about the
    project `path` (named in what a Fault says)."""

    def __init__(self, api: str, token: str, timeout: float, path: str, source: str) -> None:
        self.api = api.rstrip("/")
        self.path = path
        self.source = source  # where the token was read, for a refusal
        self.where = f"{path} on {self.api}"
        self.host = urllib.parse.urlsplit(self.api).hostname or self.api
        self._session = Session()
        self._client = gitlab.Gitlab(
            self.api.removesuffix("/api/v4"),
            private_token=token,
            timeout=timeout,
            retry_transient_errors=False,
            keep_base_url=True,
            session=self._session,
        )

    @property
    def calls(self) -> int:
        return self._session.calls

    def request(
        self,
        verb: str,
        path: str,
        what: str,
        query: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        missing: bool = False,
    ) -> Any:
        """One request's JSON (its text when it is not JSON); every way it can fail is a
        Fault that says what to do. `missing`: a 404 is None, not a Fault."""
        try:
            answer = self._client.http_request(
                verb,
                path,
                query_data=query or {},
                post_data=body,
                obey_rate_limit=False,
                retry_transient_errors=False,
                max_retries=0,
            )
        except GitlabAuthenticationError as exc:
            fix = credentials.refused(self.host, self.source, "gitlab")
            raise faults.token_refused("GitLab", what, _said(exc), fix) from None
        except GitlabHttpError as exc:
            if missing and exc.response_code == 404:
                return None
            raise self._failed(exc.response_code or 0, _said(exc), what) from None
        except requests.Timeout:
            raise faults.timed_out("GitLab", self.where, what) from None
        except requests.RequestException as exc:
            raise faults.unreachable("GitLab", self.where, what, exc) from None
        if "json" in answer.headers.get("Content-Type", ""):
            return answer.json()
        return answer.text

    def get(self, path: str, what: str, **query: Any) -> Any:
        return self.request("get", path, what, query)

    def pages(self, path: str, what: str, **query: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            batch = self.get(path, f"{what} (page {page})", per_page=PAGE, page=page, **query)
            found += batch
            if len(batch) < PAGE:
                return found
            page += 1

    def _failed(self, status: int, said: str, what: str) -> Fault:
        if status == 429:  # gitlab.com may name no time
            return faults.limited("GitLab", what, self._session.retry_after())
        cannot = (f"{self.path} (it needs the api scope and the Developer role at least; "
                  "docs/forge.md lists what it needs)")  # fmt: skip
        return faults.answered("GitLab", status, what, said, cannot)


def _said(exc: Exception) -> str:
    said = getattr(exc, "error_message", "") or str(exc)
    return str(said)[:300] or "no reason given"

"""What the test forges' webhooks share: deliveries queued in the order the forge's state
changed (under its lock), POSTed one at a time by one thread of their own, outside it.

The receiver may call back into the forge's API while it answers (the product's webhook
does), so nothing is sent while the forge's lock is held. As GitHub and GitLab, a delivery
is sent once, when its event happens; one that failed is not retried (GitHub redelivers only
when someone asks; GitLab's automatic retries are not modelled). Off until a test names the
receiver (`point`)."""

import json
import queue
import threading
from collections.abc import Callable
from typing import Any

import httpx

TIMEOUT = 30.0  # seconds a receiver has to answer one delivery
Headers = Callable[[str, bytes], dict[str, str]]  # (event, body) -> the delivery's headers


class Sender:
    """One forge's webhook. `sent`: each delivery's event, action and the HTTP status it was
    answered with (0: the receiver could not be reached)."""

    def __init__(self) -> None:
        self.url = ""
        self.sent: list[tuple[str, str, int]] = []
        self._headers: Headers = lambda event, body: {}
        self._queue: queue.Queue[tuple[str, str, bytes] | None] = queue.Queue()
        self._answered = threading.Condition()
        self._queued = self._done = 0
        self._thread: threading.Thread | None = None

    @property
    def on(self) -> bool:
        return bool(self.url)

    def point(self, url: str, headers: Headers) -> None:
        """From now on deliveries go to `url`, each with `headers(event, body)`."""
        self.url, self._headers = url, headers
        if self._thread is None:
            self._thread = threading.Thread(target=self._send_all, daemon=True)
            self._thread.start()

    def queue(self, event: str, action: str, payload: dict[str, Any]) -> None:
        with self._answered:
            self._queued += 1
        self._queue.put((event, action, json.dumps(payload).encode()))

    def settled(self, timeout: float) -> None:
        """Returns once every delivery queued so far was answered, or could not be."""
        with self._answered:
            wanted = self._queued
            if not self._answered.wait_for(lambda: self._done >= wanted, timeout):
                waiting = wanted - self._done
                raise TimeoutError(f"{waiting} webhook deliveries unanswered after {timeout}s")

    def stop(self) -> None:
        """What is still queued is dropped, unsent: the forge is going away."""
        if self._thread is not None:
            self.url = ""
            self._queue.put(None)
            self._thread.join(timeout=TIMEOUT)

    def _send_all(self) -> None:
        with httpx.Client(timeout=TIMEOUT) as client:
            while (item := self._queue.get()) is not None:
                event, action, body = item
                url = self.url
                status = self._post(client, url, event, body) if url else None
                with self._answered:
                    if status is not None:
                        self.sent.append((event, action, status))
                    self._done += 1
                    self._answered.notify_all()

    def _post(self, client: httpx.Client, url: str, event: str, body: bytes) -> int:
        try:
            return client.post(url, content=body, headers=self._headers(event, body)).status_code
        except httpx.HTTPError:
            return 0

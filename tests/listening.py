"""Waiting for a server a test started to listen on its port: one loop for every such server
(HTTP servers, git servers), since none of them says when it is ready."""

import socket
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import HANG_SECONDS


def until_listening(process: "subprocess.Popen[Any]", port: int, why: Callable[[], str]) -> None:
    """Return once 127.0.0.1:`port` takes a connection. Fail, with `why()` (its log), as
    soon as `process` exits, or after HANG_SECONDS: a hang, never a slow start."""
    hung = time.monotonic() + HANG_SECONDS
    while True:
        if process.poll() is not None:
            pytest.fail(f"the server exited ({process.returncode}): {why()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > hung:
                pytest.fail(f"not listening on {port}: {why()}")
            time.sleep(0.05)  # polling the port, not waiting for a guessed moment

"""Waiting for a server a test started to listen on its port: one loop for every such server
(HTTP servers, git servers), since none of them says when it is ready; and serving a test's own
in-process HTTP server on a thread."""

import socket
import socketserver
import subprocess
import threading
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


def serve_in_thread(server: socketserver.BaseServer) -> threading.Thread:
    """Serve `server` on a daemon thread (already listening: bound in its constructor).

    Two waits of the standard library's servers are cut, neither a test's business:
    `shutdown()` returns once the loop next looks, every 0.5 s by default, so it looks every
    20 ms; and a handler writes its headers and its body apart, so with Nagle's algorithm the
    body waits for the client's delayed ACK (40 ms an answer), so it is sent at once."""
    handler = server.RequestHandlerClass
    if isinstance(handler, type) and issubclass(handler, socketserver.StreamRequestHandler):
        # A subclass of this server's own: the test's handler class is left as it wrote it.
        server.RequestHandlerClass = type(
            handler.__name__, (handler,), {"disable_nagle_algorithm": True}
        )
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    return thread

"""A sandboxed command's environment: an allow-list and the toolchain's, never the server's.

The server's own environment (its tokens and keys) never reaches a command: a command starts
from BASE_ENV, the project's toolchain (toolchain.py) and what its request names, whose names
and sizes `request.py:check_env` checked."""

from collections.abc import Mapping

from wvo_mcp.sandbox.request import Request

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The whole environment a command starts from; the parent's is never passed on, so
# tokens and keys in the server's environment do not reach the command.
BASE_ENV: Mapping[str, str] = {
    "PATH": DEFAULT_PATH,
    "HOME": "/tmp",
    "TMPDIR": "/tmp",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "TERM": "dumb",
}


def command_env(request: Request) -> dict[str, str]:
    """The allow-list, the toolchain's PATH and VIRTUAL_ENV, and the request's variables on
    top. A request may replace PATH, HOME and the rest: they only shape the command's own
    view, inside the sandbox (the sandbox tools themselves are started with a fixed
    environment)."""
    tools = request.toolchain.env(request.workspace, DEFAULT_PATH)
    return {**BASE_ENV, **tools, **request.env}

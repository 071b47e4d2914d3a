"""The Docker backend, used when an engine answers and the image is already here.

The Docker backend, through the `docker` package, when an engine answers here and the
image is present locally. It never pulls an image and never starts a daemon."""

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterable
from typing import Any

import docker
import docker.errors
import requests.exceptions

from wvo_mcp.errors import ValidationFailed
from wvo_mcp.sandbox.environment import command_env
from wvo_mcp.sandbox.outcome import BackendCheck, Outcome
from wvo_mcp.sandbox.output import Tail
from wvo_mcp.sandbox.protect import Layout
from wvo_mcp.sandbox.request import Request, argv
from wvo_mcp.sandbox.runner import DRAIN_DEADLINE_S

log = logging.getLogger(__name__)

API_TIMEOUT_S = 5  # any engine call but the wait: a missing or stuck engine is an error soon
SANDBOX_USER = "65534:65534"


DEFAULT_SOCKET = "/var/run/docker.sock"


def _socket_error() -> str | None:
    """Why the engine's local socket cannot be reached, checked first because the docker
    package leaks the socket of a failed connection (and says less about why)."""
    host = os.environ.get("DOCKER_HOST", "")
    if host and not host.startswith("unix://"):
        return None  # tcp:// or ssh://: the client's own ping tells
    path = host.removeprefix("unix://") or DEFAULT_SOCKET
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(API_TIMEOUT_S)
        try:
            probe.connect(path)
        except OSError as exc:
            return f"no Docker engine answers at {path} ({exc.strerror or exc})"
    return None


def _client() -> docker.DockerClient:
    """A client of the engine DOCKER_HOST (or the default socket) names, pinged."""
    error = _socket_error()
    if error is not None:
        raise docker.errors.DockerException(error)
    client = docker.from_env(timeout=API_TIMEOUT_S)
    client.ping()
    return client


def unavailable(image: str) -> str | None:
    """Why Docker cannot run commands here, or None when it can."""
    try:
        client = _client()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        return str(exc) if "no Docker engine" in str(exc) else f"no Docker engine answers: {exc}"
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        return (
            f"the engine answers but image {image!r} is not present locally; "
            f"`docker pull {image}` or set WVO_SANDBOX_IMAGE (wvo-mcp never pulls)"
        )
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        return f"the engine answers but cannot look up image {image!r}: {exc}"
    finally:
        client.close()
    return None


def check(image: str) -> BackendCheck:
    reason = unavailable(image)
    if reason is not None:
        return BackendCheck("docker", False, reason)
    return BackendCheck(
        "docker",
        True,
        f"image {image}; no network, read-only root, memory+swap, CPU and pids limits, "
        f"all capabilities dropped, no-new-privileges, user {SANDBOX_USER}",
    )


def options(request: Request, image: str, layout: Layout) -> dict[str, Any]:
    """The container's settings for this request (pure): the workspace root and, over it,
    what the server trusts read-only or hidden (protect.py); the command's folder is entered
    inside."""
    root = str(layout.root)
    volumes = {root: {"bind": root, "mode": "rw"}}
    tmpfs = {"/tmp": f"rw,nosuid,nodev,size={request.tmp_mb}m"}
    for path, how in layout.mounts():
        if how == "hidden":
            # An empty read-only tmpfs: nothing of the folder to read, lock or write. The
            # engine mounts binds and tmpfs together, parents first.
            tmpfs[str(path)] = "ro,nosuid,nodev,noexec"
        else:
            volumes[str(path)] = {"bind": str(path), "mode": "rw" if how == "pinned" else "ro"}
    memory = f"{request.memory_mb}m"
    return {
        "image": image,
        "command": argv(request),
        "environment": command_env(request),
        "working_dir": str(layout.root / request.cwd),
        "volumes": volumes,
        "network_mode": "bridge" if request.network else "none",
        "read_only": True,
        "tmpfs": tmpfs,
        "mem_limit": memory,
        "memswap_limit": memory,  # equal to the memory limit: no swap
        "nano_cpus": int(request.cpus * 1e9),
        "pids_limit": request.pids_limit,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "user": SANDBOX_USER,
        "init": True,  # reaps orphans; the container's end kills every process in it
        "detach": True,
    }


def drain(chunks: Iterable[bytes], tail: Tail) -> None:
    """Copy a log stream into its capped tail as it arrives, until the stream ends (the
    container stopped) or breaks (it was closed or the container removed): what arrived
    is kept either way, and memory stays bounded by the tail however much is written."""
    try:
        for chunk in chunks:
            tail.write(chunk)
    except Exception as exc:  # best effort: a broken log connection must not fail the run
        log.debug("docker log stream ended early: %s", exc)


class LogFollower:
    """One output stream of a running container (`container.logs(stream=True, follow=True)`
    for stdout or stderr alone), drained into a Tail in a thread while the container runs."""

    def __init__(self, container: Any, name: str, output_bytes: int) -> None:
        self.tail = Tail(output_bytes)
        self._stream: Iterable[bytes] = container.logs(
            stream=True, follow=True, stdout=name == "stdout", stderr=name == "stderr"
        )
        self._thread = threading.Thread(
            target=drain, args=(self._stream, self.tail), name=f"docker-{name}", daemon=True
        )
        self._thread.start()

    def finish(self, deadline: float) -> None:
        """Wait (until the monotonic `deadline`) for the stream to end, then close it: a
        stream that is still open after its container ended is not waited for any longer."""
        self._thread.join(max(0.0, deadline - time.monotonic()))
        self.close()
        self._thread.join(1.0)  # closing ends the read it is blocked in

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):  # already closed, or the engine went away
                close()


def run(request: Request, image: str, output_bytes: int, layout: Layout) -> Outcome:
    try:
        client = _client()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise ValidationFailed(
            f"the Docker engine does not answer: {exc}; run `wvo-mcp sandbox doctor`"
        ) from None
    try:
        try:
            container = client.containers.create(**options(request, image, layout))
        except docker.errors.ImageNotFound:
            raise ValidationFailed(
                f"image {image!r} is not present locally; `docker pull {image}` or set "
                "WVO_SANDBOX_IMAGE"
            ) from None
        followers: list[LogFollower] = []
        try:
            started = time.monotonic()
            container.start()
            # Followed from the start (the engine replays what came before the request), each
            # stream into its capped tail, so a command's output never piles up in memory.
            followers.append(LogFollower(container, "stdout", output_bytes))
            followers.append(LogFollower(container, "stderr", output_bytes))
            timed_out = False
            try:
                # The timeout counts from the start, opening the streams included.
                left = request.timeout_s - (time.monotonic() - started)
                status = container.wait(timeout=max(left, 0.001))
                returncode: int | None = int(status.get("StatusCode", -1))
            except requests.exceptions.RequestException:
                # The wait's HTTP read timed out: the command ran past its timeout.
                timed_out, returncode = True, None
                container.kill()
            duration = time.monotonic() - started
            container.reload()
            state = container.attrs.get("State", {})
            # The container has ended: its streams end once the engine has sent the rest.
            deadline = time.monotonic() + DRAIN_DEADLINE_S
            for follower in followers:
                follower.finish(deadline)
        finally:
            for follower in followers:
                follower.close()
            container.remove(force=True)
    finally:
        client.close()
    return Outcome(
        returncode=returncode,
        timed_out=timed_out,
        stdout=followers[0].tail,
        stderr=followers[1].tail,
        duration_s=duration,
        oom_killed=bool(state.get("OOMKilled")),
        signal_as_status=True,
    )

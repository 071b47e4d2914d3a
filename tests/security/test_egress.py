"""A command in a real bwrap sandbox without a network of its own, with the relay as its entry
process and the egress proxy outside: the allowed server on the host's loopback answers
through the relay; another server on the host's loopback is out of reach directly and
through the proxy, whatever the relay is told; hostile requests on the proxy's socket are
refused saying why, and the proxy serves on. Each test checks the host's side as well."""

import json
import socket
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from tests.unit.test_egress import Site, ask, connect, get, running, site
from wvo_mcp.config import Settings
from wvo_mcp.models import SandboxResult
from wvo_mcp.sandbox import Request, bwrap, relay, run
from wvo_mcp.sandbox.egress import ESTABLISHED, EgressProxy, Endpoint

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not bwrap.probe().usable, reason=f"no bwrap: {bwrap.probe().detail}"),
]
PROXY_PORT = 3128  # in the sandbox's own network namespace, where nothing else listens

# Run inside the sandbox. Prints one JSON [name, what happened] per line.
PROBE_HELPERS = """
import http.client, json, socket, sys, time
cfg = json.loads(sys.argv[1])

def report(name, value):
    print(json.dumps([name, value]), flush=True)

def fetch(port, path, tunnel=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    if tunnel:
        conn.set_tunnel("127.0.0.1", tunnel)
    try:
        conn.request("GET", path)
        answer = conn.getresponse()
        return f"{answer.status} {answer.read().decode()}"
    except (OSError, http.client.HTTPException) as exc:
        return f"failed: {type(exc).__name__}"
    finally:
        conn.close()

def dial(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=10).close()
        return "connected"
    except ConnectionRefusedError:
        return "connection refused"

def ask(via, data, wait_s=0):
    if via == "socket":
        conn = socket.socket(socket.AF_UNIX)
        conn.connect(cfg["socket"])
    else:
        conn = socket.create_connection(("127.0.0.1", cfg["proxy_port"]))
    conn.settimeout(20)
    got = b""
    with conn:
        conn.sendall(data)
        while True:
            try:
                chunk = conn.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
    head, _, body = got.decode(errors="replace").partition("\\r\\n\\r\\n")
    return head.split("\\r\\n")[0] + " | " + body.strip()
"""


def parse(result: SandboxResult) -> dict[str, str]:
    assert result.backend == "bwrap" and result.exit_code == 0, result
    return dict(json.loads(line) for line in result.stdout_tail.splitlines())


async def sandboxed(
    workspace: Path, forwards: list[str], probe: str, cfg: dict[str, object]
) -> SandboxResult:
    """The probe as the sandbox's command, behind the relay; the relay's source goes on the
    command line, since the sandbox does not mount the wvo_mcp package."""
    socket_path = str(workspace / "egress.sock")
    code = PROBE_HELPERS + textwrap.dedent(probe)
    argv = [sys.executable, "-I", "-c", code, json.dumps({**cfg, "socket": socket_path})]
    line = relay.command(
        sys.executable,
        socket_path,
        argv,
        forwards=forwards,
        proxy_port=PROXY_PORT,
    )
    request = Request(command=line, workspace=workspace, network=False, timeout_s=60)
    settings = Settings(sandbox_backend="bwrap", state_root=workspace.parent / "state")
    return await anyio.to_thread.run_sync(run, request, settings)


@pytest.fixture
def sites() -> Iterator[tuple[Site, Site, Site]]:
    with site("site-a") as a, site("site-b") as b, site("site-c") as c:
        yield a, b, c


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    path.mkdir()
    return path


async def test_only_the_allowed_server_answers_through_the_relay(
    workspace: Path, sites: tuple[Site, Site, Site]
) -> None:
    a, b, c = sites
    proxy = EgressProxy(workspace / "egress.sock", [Endpoint("127.0.0.1", a.port)])
    async with running(proxy):
        # The relay is told to forward C too: it asks, the proxy says no.
        result = await sandboxed(
            workspace,
            [f"127.0.0.1:{a.port}", f"127.0.0.1:{c.port}"],
            """
            report("forward a", fetch(cfg["a"], "/through-the-relay"))
            report("tunnel a", fetch(cfg["proxy_port"], "/tunnelled", tunnel=cfg["a"]))
            report("forward c", fetch(cfg["c"], "/x"))
            report("tunnel c", fetch(cfg["proxy_port"], "/x", tunnel=cfg["c"]))
            report("direct b", dial(cfg["b"]))
            report("via socket b", ask("socket", f"CONNECT 127.0.0.1:{cfg['b']} HTTP/1.1\\r\\n\\r\\n".encode()))
            report("via proxy b", ask("proxy", f"CONNECT 127.0.0.1:{cfg['b']} HTTP/1.1\\r\\n\\r\\n".encode()))
            report("again a", fetch(cfg["a"], "/again"))
            """,  # noqa: E501
            {"a": a.port, "b": b.port, "c": c.port, "proxy_port": PROXY_PORT},
        )
    seen = parse(result)
    assert seen["forward a"] == "200 site-a /through-the-relay"
    assert seen["tunnel a"] == "200 site-a /tunnelled"
    assert seen["again a"] == "200 site-a /again"
    assert seen["forward c"].startswith("failed: ")  # closed without an answer
    assert seen["tunnel c"] == "failed: OSError"  # http.client: "Tunnel connection failed: 403"
    assert seen["direct b"] == "connection refused"  # the host's loopback is not this one
    refused_b = f"HTTP/1.1 403 Forbidden | 127.0.0.1:{b.port} is not an allowed destination; "
    assert seen["via socket b"] == refused_b + f"allowed: 127.0.0.1:{a.port}"
    assert seen["via proxy b"] == refused_b + f"allowed: 127.0.0.1:{a.port}"
    assert f"the egress proxy refused 127.0.0.1:{c.port}: 'HTTP/1.1 403 Forbidden'" in (
        result.stderr_tail
    )
    assert (a.connections, b.connections, c.connections) == (3, 0, 0)
    assert (proxy.tunnels, proxy.refused) == (3, 4)
    assert not (workspace / "egress.sock").exists()


async def test_hostile_requests_are_refused_and_the_proxy_serves_on(
    workspace: Path, sites: tuple[Site, Site, Site]
) -> None:
    a = sites[0]
    proxy = EgressProxy(
        workspace / "egress.sock", [Endpoint("127.0.0.1", a.port)], head_timeout_s=1.0
    )
    async with running(proxy):
        result = await sandboxed(
            workspace,
            [f"127.0.0.1:{a.port}"],
            """
            a = cfg["a"]
            attacks = {
                "other name": b"CONNECT example.com:443 HTTP/1.1\\r\\n\\r\\n",
                "localhost": f"CONNECT localhost:{a} HTTP/1.1\\r\\n\\r\\n".encode(),
                "not connect": f"GET http://127.0.0.1:{a}/ HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n".encode(),
                "oversized": f"CONNECT 127.0.0.1:{a} HTTP/1.1\\r\\nX: {'a' * 9000}\\r\\n\\r\\n".encode(),
                "slowloris": f"CONNECT 127.0.0.1:{a} HTTP/1.1\\r\\nX: 1\\r\\n".encode(),
                "garbage": bytes(range(256)) + b"\\r\\n\\r\\n",
            }
            for via in ("socket", "proxy"):
                for name, data in attacks.items():
                    report(f"{via} {name}", ask(via, data))
            report("after", fetch(a, "/after"))
            """,  # noqa: E501
            {"a": a.port, "proxy_port": PROXY_PORT},
        )
        # From the host too: the proxy still tunnels.
        reply = await ask(proxy.path, connect(f"127.0.0.1:{a.port}") + get("/host"))
    seen = parse(result)
    for via in ("socket", "proxy"):
        assert seen[f"{via} other name"] == (
            "HTTP/1.1 403 Forbidden | example.com:443 is not an allowed destination; "
            f"allowed: 127.0.0.1:{a.port}"
        )
        assert seen[f"{via} localhost"].startswith(
            f"HTTP/1.1 403 Forbidden | localhost:{a.port} is not an allowed destination"
        )
        assert seen[f"{via} not connect"].startswith(
            "HTTP/1.1 405 Method Not Allowed | only CONNECT is accepted, not 'GET'"
        )
        assert seen[f"{via} oversized"] == (
            "HTTP/1.1 431 Request Header Fields Too Large | the request head is longer "
            "than 8192 bytes"
        )
        assert seen[f"{via} slowloris"].startswith(
            "HTTP/1.1 408 Request Timeout | the request head did not arrive within 1 s"
        )
        assert seen[f"{via} garbage"].startswith("HTTP/1.1 400 Bad Request | ")
    assert seen["after"] == "200 site-a /after"
    assert reply.startswith(ESTABLISHED) and reply.endswith(b"site-a /host")
    assert (proxy.tunnels, proxy.refused) == (2, 12)
    assert a.connections == 2


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback on this host")
async def test_an_ipv6_loopback_server_is_forwarded_on_both_loopbacks(workspace: Path) -> None:
    with site("site-v6", "::1") as v6:
        proxy = EgressProxy(workspace / "egress.sock", [Endpoint("::1", v6.port)])
        async with running(proxy):
            result = await sandboxed(
                workspace,
                [f"[::1]:{v6.port}"],
                """
                import urllib.request
                for host in ("[::1]", "127.0.0.1"):
                    url = f"http://{host}:{cfg['port']}/v6"
                    report(host, urllib.request.urlopen(url, timeout=20).read().decode())
                """,
                {"port": v6.port, "proxy_port": PROXY_PORT},
            )
    assert parse(result) == {"[::1]": "site-v6 /v6", "127.0.0.1": "site-v6 /v6"}
    assert (proxy.tunnels, proxy.refused, v6.connections) == (2, 0, 2)

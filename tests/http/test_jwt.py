"""`serve --http --jwt-issuer … --jwks-url …`: an external issuer's JWTs, signature checked
against the keys it publishes (served here by a throwaway HTTP server)."""

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import open_db
from tests.http.conftest import MCP_HEADERS, connect, http_server, initialize_body
from tests.listening import serve_in_thread

pytestmark = [pytest.mark.anyio, pytest.mark.process]
ISSUER = "https://id.example.test/realms/wvo"


@contextmanager
def jwks_server(document: dict[str, Any]) -> Iterator[str]:
    body = json.dumps(document).encode()

    class Keys(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Keys)
    thread = serve_in_thread(httpd)
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/certs"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


async def test_an_external_issuers_jwts_are_accepted_and_checked(state_root: Path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    with jwks_server({"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]}) as url:
        flags = ("--jwt-issuer", ISSUER, "--jwks-url", url)
        with http_server(state_root, *flags) as server:

            def signed(signer: Any = key, **claims: Any) -> str:
                body = {"iss": ISSUER, "aud": server.url, "sub": "u-123",
                        "exp": int(time.time()) + 300, "wvo_role": "agent",
                        "wvo_name": "sso-agent", **claims}  # fmt: skip
                return jwt.encode(body, signer, algorithm="RS256", headers={"kid": "k1"})

            async with connect(server, signed()) as agent:
                assert (await agent.call("plan_next"))["agent_id"] == "sso-agent"
            async with connect(server, signed(wvo_role="person", wvo_name="carol")) as person:
                tools = {t.name for t in (await person.client.list_tools()).tools}
                assert "task_approve" in tools and "claim_task" not in tools

            async def status(bearer: str) -> int:
                async with server.http(bearer) as http:
                    answer = await http.post(
                        server.url, content=initialize_body(), headers=MCP_HEADERS
                    )
                    return answer.status_code

            assert await status(signed()) == 200
            assert await status(signed(other)) == 401, "signed by a key the issuer never published"
            assert await status(signed(aud="https://elsewhere.example/mcp")) == 401
            assert await status(signed(iss="https://evil.example")) == 401
            assert await status(signed(exp=int(time.time()) - 60)) == 401
            assert await status(signed(wvo_role="admin")) == 401
            assert await status(signed(wvo_name="person:mallory")) == 401
    with open_db(state_root) as db:
        assert db.execute("SELECT count(*) FROM api_tokens").fetchone()[0] == 0

"""The test GitHub's App: its JWT checked as GitHub checks it, its installation on the
repository, and installation tokens that expire.

A request to an App's own endpoints carries a JWT (RS256, signed with the App's private key,
its issuer the App's id, issued at most 60 s in the future and expiring at most ten minutes
after it is issued: docs.github.com, apps/creating-github-apps/authenticating-with-a-github-app/
generating-a-json-web-token-jwt-for-a-github-app). The installation's access token is what
every other request carries; it acts with the installation's permissions (the test forge's
`permissions`, as a fine-grained token's) and is refused once it has expired. Every request
and answer is held to GitHub's description by the forge, as any other is."""

import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.forge.description import minimal, schema_of

if TYPE_CHECKING:
    from tests.forge.server import Forge

Answer = tuple[int, Any, dict[str, str]]
JWT_LIFE = 600  # GitHub refuses a JWT that would live longer


@dataclass
class App:
    id: int
    key: str = field(repr=False)  # the private key, PEM, as GitHub lets its owner download it
    public: Any = field(repr=False)
    installation: int = 4242
    life: float = 3600.0  # seconds an installation token lives (GitHub: an hour)
    minted: dict[str, float] = field(default_factory=dict)  # token -> when it expires
    refused: list[str] = field(default_factory=list)  # why each JWT was refused
    expired: list[str] = field(default_factory=list)  # tokens sent after they expired


_IDS = iter(range(1001, 10**6))  # githubkit keeps an App's JWT by its id, process-wide


def make(app_id: int | None = None) -> App:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    return App(next(_IDS) if app_id is None else app_id, pem, private.public_key())


def accepts(app: App | None, token: str) -> bool | None:
    """Whether `token` is one of the App's installation tokens still alive (None: not one of
    its tokens at all)."""
    if app is None or token not in app.minted:
        return None
    if time.time() >= app.minted[token]:
        app.expired.append(token)
        return False
    return True


def answer(forge: "Forge", method: str, path: str, auth: str, data: Any) -> Answer | None:
    """The App's endpoints, or None for any other request."""
    app = forge.app
    for pattern, verb, handler in ROUTES:
        found = pattern.match(path)
        if found is None or verb != method:
            continue
        if app is None:
            return 401, _error("A JSON web token could not be decoded", "401"), {}
        why = _refused(app, auth)
        if why:
            app.refused.append(why)
            return 401, _error(why, "401"), {}
        return handler(forge, app, data, **found.groupdict())
    return None


def _refused(app: App, auth: str) -> str:
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return "A JSON web token could not be decoded"
    try:
        claims = jwt.decode(token, app.public, algorithms=["RS256"],
                            options={"require": ["iat", "exp", "iss"]}, leeway=60)  # fmt: skip
    except jwt.PyJWTError as exc:
        return f"A JSON web token could not be decoded ({exc})"
    if str(claims["iss"]) != str(app.id):
        return "Integration not found"
    if claims["exp"] - claims["iat"] > JWT_LIFE + 60:
        return "'Expiration time' claim ('exp') is too far in the future"
    return ""


def _installation(forge: "Forge", app: App, data: Any, owner: str, repo: str) -> Answer:
    if (owner, repo) != (forge.owner, forge.name):
        return 404, _error("Not Found", "404"), {}
    found = minimal(schema_of("installation"))
    found.update(id=app.installation, app_id=app.id, app_slug="wvo-queue",
                 permissions=dict(forge.permissions), repository_selection="selected")  # fmt: skip
    return 200, found, {}


def _mint(forge: "Forge", app: App, data: Any, installation_id: str) -> Answer:
    if int(installation_id) != app.installation:
        return 404, _error("Not Found", "404"), {}
    wanted = (data or {}).get("repositories")
    if wanted is not None and wanted != [forge.name]:
        said = ("There is at least one repository that does not exist or is not accessible "
                f"to the parent installation: {wanted}")  # fmt: skip
        return 422, _error(said, "422"), {}
    token = "ghs_" + secrets.token_hex(18)
    expires = time.time() + app.life
    app.minted[token] = expires
    found = minimal(schema_of("installation-token"))
    found.update(token=token, permissions=dict(forge.permissions),
                 expires_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires)),
                 repository_selection="selected")  # fmt: skip
    return 201, found, {}


def _error(message: str, status: str) -> dict[str, str]:
    return {"message": message, "documentation_url": "https://docs.github.com/rest",
            "status": status}  # fmt: skip


def _route(template: str) -> "re.Pattern[str]":
    return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$")


ROUTES: list[tuple["re.Pattern[str]", str, Callable[..., Answer]]] = [
    (_route("/repos/{owner}/{repo}/installation"), "GET", _installation),
    (_route("/app/installations/{installation_id}/access_tokens"), "POST", _mint),
]

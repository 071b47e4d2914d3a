"""A GitHub App as the queue's identity: its installation's tokens, minted and refreshed.

On the trusted side alone. Where WVO_GITHUB_APP_ID is set (`--github-app-id`), the queue,
`import`, `doctor` and the webhook ask GitHub as that App rather than with a person's token:
its private key (WVO_GITHUB_APP_PRIVATE_KEY, the PEM itself, or
WVO_GITHUB_APP_PRIVATE_KEY_FILE, a file holding it: `--github-app-key`) signs a JWT of ten
minutes (githubkit's), which finds the App's installation on the repository and mints an
installation token for that repository alone; githubkit keeps it and mints the next a minute
before it expires (GitHub: an hour). Pull requests, comments and merges are then the App's,
under its installation's rate limit (which grows with the installation) and its own
permissions. The key and every token stay in the process that asks the forge: a worker's
environment is built from an allowlist (autopilot/worker_config.py), the key file is the person's
and outside any sandbox, and nothing here is written or said. Git's own pushes still use the
person's git credentials."""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from wvo_mcp.errors import ValidationFailed

APP_ID = "WVO_GITHUB_APP_ID"
APP_KEY = "WVO_GITHUB_APP_PRIVATE_KEY"
APP_KEY_FILE = "WVO_GITHUB_APP_PRIVATE_KEY_FILE"
MAX_KEY_BYTES = 16 * 1024  # a 4096-bit RSA key's PEM is about 3.2 KB

# githubkit (with httpx, click and rich) is a fifth of a second of imports: every command
# asks `configured`, and only one with an App needs the strategies.
if TYPE_CHECKING:
    from githubkit import AppAuthStrategy, AppInstallationAuthStrategy


@dataclass(frozen=True)
class App:
    id: str
    key: str = field(repr=False)  # the App's private key, PEM
    source: str  # where the key was read: a variable's name, or a file


def configured(environ: Mapping[str, str] | None = None) -> App | None:
    """The App the person named, or None (then a person's token is used: credentials.py).
    A key without an id, an id that is not a number, or a key that is not a PEM private key
    is refused, saying what is accepted."""
    env = os.environ if environ is None else environ
    app_id = env.get(APP_ID, "").strip()
    given = env.get(APP_KEY, "").strip()
    path = env.get(APP_KEY_FILE, "").strip()
    if not app_id:
        if given or path:
            named = APP_KEY if given else APP_KEY_FILE
            raise ValidationFailed(f"a GitHub App's key is given ({named}) without its id: set "
                                   f"{APP_ID} (or --github-app-id) to the App ID its settings "
                                   "page shows")  # fmt: skip
        return None
    if not app_id.isdigit():
        raise ValidationFailed(
            f"{APP_ID} is {app_id[:40]!r}: give the App's numeric App ID, as its settings "
            "page shows it (not its client ID or name)"
        )
    key, source = given, APP_KEY
    if not key and path:
        key, source = _read(Path(path)), path
    if "-----BEGIN" not in key or "PRIVATE KEY-----" not in key:
        where = f"{source} holds" if key else f"neither {APP_KEY} nor {APP_KEY_FILE} gives"
        raise ValidationFailed(f"GitHub App {app_id}: {where} no private key: give the .pem file "
                               f"GitHub generated for the App ({APP_KEY_FILE}, or --github-app-key)"
                               f", or its text ({APP_KEY})")  # fmt: skip
    return App(app_id, key, source)


def _read(path: Path) -> str:
    try:
        with path.open("rb") as found:
            raw = found.read(MAX_KEY_BYTES + 1)
    except OSError as exc:
        raise ValidationFailed(
            f"{APP_KEY_FILE}: cannot read {path}: {exc.strerror or exc}"
        ) from None
    if len(raw) > MAX_KEY_BYTES:
        raise ValidationFailed(f"{APP_KEY_FILE}: {path} is larger than a private key's PEM")
    return raw.decode("ascii", errors="replace")


def refused(app: App) -> str:
    """What to do when GitHub refuses the App's JWT or its installation's token."""
    return (f"check {APP_ID} ({app.id}) and the App's private key (from {app.source}): "
            "GitHub takes a key the App's settings list (Private keys), for that App")  # fmt: skip


def as_app(app: App) -> "AppAuthStrategy":
    """The App itself (its JWT): for finding its installation."""
    from githubkit import AppAuthStrategy

    return AppAuthStrategy(app.id, app.key)


def as_installation(app: App, installation: int, repository: str) -> "AppInstallationAuthStrategy":
    """The App's installation, its tokens for `repository` (its name, without the owner)
    alone."""
    from githubkit import AppInstallationAuthStrategy

    return AppInstallationAuthStrategy(app.id, app.key, installation, repositories=[repository])

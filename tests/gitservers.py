"""Real git servers on 127.0.0.1 for the tests of landing onto a remote: `git daemon`, git's
smart HTTP (`git http-backend` behind lighttpd, with basic authentication) and `sshd` with a
key. Each serves the bare repositories under one folder, and can be stopped and started
again on the same port (a remote that goes away mid-run).

    with Daemon(root) as server:
        url = server.url("project.git")
"""

import contextlib
import getpass
import os
import shutil
import subprocess
from pathlib import Path
from types import TracebackType

from tests.listening import until_listening
from tests.pgcluster import free_port


def bare(root: Path, source: Path, name: str = "project.git") -> Path:
    """A bare repository under `root` holding `source`'s branches (a team's remote)."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / name
    subprocess.run(["git", "clone", "-q", "--bare", str(source), str(path)], check=True,
                   capture_output=True)  # fmt: skip
    return path


class Server:
    """One server process; `url(name)` reaches the bare repository `root/name`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = root.parent / f"{type(self).__name__.lower()}-{self.port}.log"

    def argv(self) -> list[str]:
        raise NotImplementedError

    def url(self, name: str) -> str:
        raise NotImplementedError

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv(), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True,
            )  # fmt: skip
        until_listening(self.process, self.port, self.log.read_text)

    def stop(self) -> None:
        """Killed at once, with every connection it serves (a remote gone mid-push)."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, 9)
            self.process.wait()

    def __enter__(self) -> "Server":
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class Daemon(Server):
    """`git daemon`, pushes allowed: git://127.0.0.1:PORT/name."""

    def argv(self) -> list[str]:
        return ["git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack",
                f"--base-path={self.root}", "--listen=127.0.0.1", f"--port={self.port}",
                str(self.root)]  # fmt: skip

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}"


class SmartHttp(Server):
    """git http-backend as a CGI behind lighttpd, every request behind basic authentication
    as `user` with `password`: http://127.0.0.1:PORT/git/name."""

    def __init__(self, root: Path, user: str = "team", password: str = "s3cret-token") -> None:
        super().__init__(root)
        self.user, self.password = user, password
        conf = root.parent / f"lighttpd-{self.port}"
        conf.mkdir()
        (conf / "users").write_text(f"{user}:{password}\n")
        backend = Path(
            subprocess.run(["git", "--exec-path"], capture_output=True, text=True, check=True)
            .stdout.strip()
        ) / "git-http-backend"  # fmt: skip
        (conf / "lighttpd.conf").write_text(f"""
server.modules = ("mod_alias", "mod_setenv", "mod_cgi", "mod_auth", "mod_authn_file")
server.document-root = "{root}"
server.bind = "127.0.0.1"
server.port = {self.port}
server.errorlog = "{conf}/error.log"
alias.url = ("/git" => "{backend}")
$HTTP["url"] =~ "^/git" {{
    cgi.assign = ("" => "")
    setenv.add-environment = ("GIT_PROJECT_ROOT" => "{root}", "GIT_HTTP_EXPORT_ALL" => "")
}}
auth.backend = "plain"
auth.backend.plain.userfile = "{conf}/users"
auth.require = ("/git" => ("method" => "basic", "realm" => "git", "require" => "valid-user"))
""")
        self.conf = conf / "lighttpd.conf"

    def argv(self) -> list[str]:
        return [_needed("lighttpd", "/usr/sbin/lighttpd"), "-D", "-f", str(self.conf)]

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/git/{name}"


class Sshd(Server):
    """sshd with one key allowed, for this user: ssh://USER@127.0.0.1:PORT/ROOT/name. The
    client's key is `key`; `ssh_command` is what a person's git config would say."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        conf = root.parent / f"sshd-{self.port}"
        conf.mkdir()
        for name in ("host", "client"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                            str(conf / name)], check=True)  # fmt: skip
        (conf / "authorized_keys").write_text((conf / "client.pub").read_text())
        (conf / "authorized_keys").chmod(0o600)
        (conf / "sshd_config").write_text(f"""
Port {self.port}
ListenAddress 127.0.0.1
HostKey {conf}/host
PidFile {conf}/sshd.pid
AuthorizedKeysFile {conf}/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
LogLevel ERROR
""")
        self.conf = conf
        self.key = conf / "client"
        self.ssh_command = (
            f"ssh -i {self.key} -o IdentitiesOnly=yes -o BatchMode=yes "
            f"-o StrictHostKeyChecking=no -o UserKnownHostsFile={conf}/known_hosts"
        )
        if os.geteuid() == 0:  # sshd's privilege separation folder, which /run loses
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)

    def argv(self) -> list[str]:
        return [_needed("sshd", "/usr/sbin/sshd"), "-D", "-e", "-f", str(self.conf / "sshd_config")]

    def url(self, name: str) -> str:
        return f"ssh://{getpass.getuser()}@127.0.0.1:{self.port}{self.root / name}"


def _needed(name: str, default: str) -> str:
    found = shutil.which(name) or (default if Path(default).exists() else None)
    if found is None:
        raise RuntimeError(f"{name} is not installed: scripts/setup installs it")
    return found

"""Why a check failed in the sandbox, told from its exit code and output, and what fixes it
(pure): a command the sandbox cannot find, a script the package manager does not have, a
tool writing into the read-only toolchain, or a real failure. Each has its own fix."""

import re
from dataclasses import dataclass

_EXIT = re.compile(r": exit (\d+) in ")
_NOT_FOUND = re.compile(r"(command not found|: not found$|No such file or directory$)", re.M)
_MISSING_SCRIPT = re.compile(
    r"(npm (ERR!|error) Missing script:|ERR_PNPM_NO_SCRIPT|error Command \"[^\"]+\" not found)"
)
_READ_ONLY = re.compile(r"(Read-only file system|EROFS|ENOENT[^\n]*node_modules/\.cache)")
_NPM_LOG = re.compile(r"(/[^\s]*/\.npm/_logs/[^\s]+)")


@dataclass(frozen=True)
class Cause:
    kind: str  # not_found | missing_script | read_only | failing
    what: str  # what went wrong, in a few words
    fix: str


def cause(output: str, toolchain: str) -> Cause:
    """What a failed check's `output` (its summary line, then its output tails) says went
    wrong; `toolchain`: what the sandbox shows read-only, as Toolchain.describe says it."""
    found = _EXIT.search(output.split("\n", 1)[0])
    code = int(found.group(1)) if found else None
    if _MISSING_SCRIPT.search(output):
        return Cause(
            "missing_script",
            "the package manager has no such script",
            "add it to package.json's `scripts`, or correct the command's name",
        )
    if code == 127 or (code is not None and _NOT_FOUND.search(output)):
        return Cause(
            "not_found",
            "a command was not found",
            "it is not on the sandbox's PATH, which holds the system folders (/usr/bin, /bin) "
            f"and the toolchain's programs ({toolchain}); install it there, or name it by its "
            "path in the toolchain",
        )
    if _READ_ONLY.search(output):
        return Cause(
            "read_only",
            "a tool wrote into a read-only folder",
            f"the toolchain ({toolchain}) is read-only in every sandbox: have the tool write "
            "in the checkout or $TMPDIR. Anything new in node_modules is each sandbox's own, "
            "but a package's own folder, .venv and declared folders stay read-only; "
            "find-cache-dir tools follow CACHE_DIR",
        )
    return Cause(
        "failing",
        "the check itself fails",
        "make it pass. If it passes by hand, the difference is the sandbox: a clean checkout "
        "(what git tracks, and the toolchain), no network, its own HOME and /tmp; "
        "`wvo-mcp sandbox run -- CMD` runs a command there to see",
    )


def notes(output: str) -> list[str]:
    """What in the output points into the sandbox, explained."""
    found = _NPM_LOG.search(output)
    if found is None:
        return []
    return [
        f"({found.group(1)} was in the sandbox's own home, gone with it; run with "
        "`--loglevel verbose` to have npm write its log into the output)"
    ]

"""Trusted git on the person's repository, and a worker's repository read as data.

- run: the runner every git call goes through (Git: no program the repository could name,
  no system or user configuration, a minimal environment), branches moved by
  compare-and-swap, worktrees, and the small queries;
- snapshots: checkpoints of the working tree as commits, their diffs, restoring them;
- stacking: a taken commit merged or rebased onto a target, and its conflicts;
- intake: a worker's commits taken as data (objects copied, checked, then a ref set);
- trees: a commit's tree written or read as raw blobs, a new repository for a worker;
- judging: which files of a worker's repository differ from a commit;
- refs: ref names, and a worker's HEAD and refs read as files;
- nofollow: paths a worker can write, opened following no link.

A worker's repository is never handed to git: its refs are read as files, its objects
copied as plain files and checked by index-pack, and its files compared as data.
"""

from wvo_mcp.git.intake import Closing, Protected
from wvo_mcp.git.judging import Unjudged
from wvo_mcp.git.refs import branch_name, read_head, read_refs, ref_name
from wvo_mcp.git.run import ENV, Blocked, Git, Repo, config_env, locate
from wvo_mcp.git.snapshots import Snapshot
from wvo_mcp.git.stacking import Conflict

__all__ = [
    "ENV",
    "Blocked",
    "Closing",
    "Conflict",
    "Git",
    "Protected",
    "Repo",
    "Snapshot",
    "Unjudged",
    "branch_name",
    "config_env",
    "locate",
    "read_head",
    "read_refs",
    "ref_name",
]

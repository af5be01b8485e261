"""Where premem may write: the checks every folder and file it is told to write go through.

A store or report folder is a place premem creates, replaces and deletes files in, so it must never be a system
folder, a top-level folder or anyone's home folder, whatever the spelling (a relative path, `..`, a symbolic
link): paths are resolved, links included, before they are checked. One function, :func:`folder_problem`,
serves the spec's `store:` and `report:` and `premem analyze --out`; :func:`file_problem` serves the single
files premem writes where it is told (`premem export --out`).
"""
from __future__ import annotations

import os
import pwd
import re

# folders premem must never write into (store and report create, replace and delete files in theirs)
SYSTEM_TREES = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/proc", "/sbin", "/sys", "/usr")
SYSTEM_FOLDERS = ("/", "/home", "/mnt", "/media", "/opt", "/root", "/run", "/srv", "/tmp", "/var")


def inside(path: str, folder: str) -> bool:
    """True when `path` is `folder` or lies within it (both absolute and normalised)."""
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def home_folders() -> set[str]:
    """Every account's home folder (resolved), the current user's and the direct children of /home; a folder
    premem manages must never be one of them."""
    homes = {os.path.expanduser("~")}
    try:
        homes |= {p.pw_dir for p in pwd.getpwall() if p.pw_dir}
    except OSError:  # no passwd database (some containers): the current user's home is still known
        pass
    try:
        homes |= {os.path.join("/home", d) for d in os.listdir("/home")}
    except OSError:
        pass
    return {os.path.realpath(h) for h in homes if h and h != "/"}


def resolved(value: str) -> str:
    """`value` as an absolute path with every symbolic link resolved (of the parts that exist)."""
    return os.path.realpath(os.path.abspath(value))


def system_problem(value: str) -> str | None:
    """Why `value`, as a folder premem would manage, is a system, top-level or home folder (None if it is not).
    Checked on the path as written and on where its links lead, so a link to /etc is no way around it."""
    for full in dict.fromkeys((os.path.normpath(os.path.abspath(value)), resolved(value))):
        if full in SYSTEM_FOLDERS or any(inside(full, t) for t in SYSTEM_TREES):
            where = "" if full == os.path.normpath(os.path.abspath(value)) else f" (it leads to {full})"
            return (f"{value!r} is a system or top-level folder{where}; premem creates and replaces files in this "
                    "folder, so give it a folder of its own (e.g. /mnt/premem/store)")
        if full in home_folders():
            return (f"{value!r} is a home folder{'' if full == os.path.abspath(value) else f' ({full})'}; premem "
                    "creates and replaces files in this folder, so give it a folder of its own inside it")
    return None


def folder_problem(value: str, may_climb: bool = False) -> str | None:
    """Why `value` cannot be a store or report folder (None if it can). Absolute paths are allowed, since a
    cluster's store is a shared mount outside the project; a relative path may not climb out of the working
    directory (unless `may_climb`: a path typed on the command line, not one a shared spec carries), and no
    path may be (or lead through a link to) a system folder, a top-level folder or a home folder, or be an
    existing file."""
    if not value.strip():
        return "is empty: give a folder"
    if value.startswith("~"):
        return f"{value!r}: premem does not expand ~; write the full path"
    if not may_climb and not os.path.isabs(value) and os.path.normpath(value).split(os.sep)[0] == "..":
        return (f"{value!r} climbs out of the working directory with ..; write an absolute path for a place outside "
                "the project (such as a shared mount)")
    problem = system_problem(value)
    if problem:
        return problem
    if os.path.lexists(value) and not os.path.isdir(value):
        return f"{value!r} exists and is not a folder (a file of that name is in the way)"
    return None


def file_problem(value: str) -> str | None:
    """Why premem must not write a file at `value` (None if it may): a system folder's file (links resolved),
    an existing folder, or a file whose folder does not exist (premem does not create it: a typo would
    otherwise land the file somewhere unseen)."""
    if not value.strip():
        return "is empty: give a file name"
    full = resolved(value)
    if any(inside(full, t) for t in SYSTEM_TREES):
        return f"{value!r} is in a system folder ({full}); write it somewhere of your own"
    if os.path.isdir(value):
        example = os.path.join(value, "results.parquet")
        return f"{value!r} is a folder; give the name of the file to write (e.g. {example})"
    parent = os.path.dirname(os.path.abspath(value))
    if not os.path.isdir(parent):
        what = "is not a folder" if os.path.lexists(parent) else "does not exist"
        return f"the folder of {value!r} ({parent}) {what}; premem does not create it"
    return None


def safe_file_name(text: str, fallback: str = "study") -> str:
    """`text` made into one file name: no folder separators, no leading dots, nothing but letters, digits,
    '.', '_', '-' and '+' (a spec's `name: ../x` must never turn a default output path into a way out)."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("._-")[:100] or fallback

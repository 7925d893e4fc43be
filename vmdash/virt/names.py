"""Names of libvirt objects: the check made before a name goes near libvirt.

libvirt's Python binding raises ValueError on a NUL byte, and no driver
accepts control characters in a name (libvirt refuses a newline everywhere;
qemu keeps <name>.xml files, so 255 bytes is the most a name can have). A
name that fails here cannot belong to any existing object, which is why the
answer is NotFound (404 "no such VM"), not a 400: a URL with such a name
simply names nothing. A form creating an object uses `name_problem` and
reports it as invalid input instead.
"""

from __future__ import annotations

import unicodedata

from vmdash.virt.errors import NotFound

MAX_NAME_BYTES = 255


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a libvirt object's name, or None if it can."""
    if not name:
        return "a name cannot be empty"
    try:
        size = len(name.encode())
    except UnicodeEncodeError:  # lone surrogates from a badly encoded URL
        return "a name must be valid text"
    if size > MAX_NAME_BYTES:
        return f"a name has at most {MAX_NAME_BYTES} bytes"
    if any(unicodedata.category(c) == "Cc" for c in name):
        return "a name cannot contain control characters"
    return None


def check_name(kind: str, name: str) -> str:
    """`name` itself, or NotFound saying that no `kind` ("VM", "network") has it."""
    problem = name_problem(name)
    if problem is not None:
        # repr(): the name may hold characters that must not reach a page raw.
        raise NotFound(f"There is no {kind} named {name!r}: {problem}.")
    return name

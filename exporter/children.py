"""Tools the build runs (par2, implantisomd5) as children that die with it.

A worker killed with SIGKILL gets no chance to stop its children; without
help, par2 goes on for minutes writing into the dead worker's build folder.
On Linux each child asks the kernel for SIGKILL when its parent dies
(``prctl(PR_SET_PDEATHSIG)``, set between fork and exec).  Elsewhere a small
Python watchdog stands between the worker and the tool: it holds the read end
of a pipe whose write end only the worker has, and kills the tool when the
pipe reads end-of-file, which the kernel makes happen when the worker dies
however it dies.

The death signal fires when the *thread* that started the child ends; that is
safe here because :func:`run` waits for the child in the same thread."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
from collections.abc import Sequence

_PR_SET_PDEATHSIG = 1

# The watchdog of the portable way: argv[1] is the pipe to watch, the rest the command.
_WATCHDOG = """
import os, subprocess, sys, threading
watched = int(sys.argv[1])
child = subprocess.Popen(sys.argv[2:], pass_fds=())
def watch():
    while os.read(watched, 1):
        pass
    child.kill()
threading.Thread(target=watch, daemon=True).start()
code = child.wait()
sys.exit(code if code >= 0 else 128 - code)
"""


def _load_prctl():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_prctl = _load_prctl()


def _die_with(parent: int):
    """What runs in the child between fork and exec: only a system call and a
    check (the parent may have died before the call, and then no signal comes)."""

    def set_death_signal() -> None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)

    return set_death_signal


def run(command: Sequence[str], *, portable: bool = False) -> subprocess.CompletedProcess:
    """``subprocess.run(command)`` with its output captured as text, the child
    killed if this process dies first.  ``portable`` forces the watchdog (tests
    of the way other systems take)."""
    options = {"capture_output": True, "text": True, "errors": "replace"}
    if _prctl is not None and not portable:
        return subprocess.run(list(command), preexec_fn=_die_with(os.getpid()), **options)
    watched, held = os.pipe()
    try:
        return subprocess.run([sys.executable, "-c", _WATCHDOG, str(watched), *command], pass_fds=(watched,), **options)
    finally:
        os.close(watched)
        os.close(held)

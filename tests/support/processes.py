"""Processes by PID, read from /proc (Linux), and whether a port has been given back."""

from __future__ import annotations

import ctypes
import os
import socket
import time
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36  # from <linux/prctl.h>


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state, ppid, ...), or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text.rpartition(")")[2].split()


def reaped(pid: int) -> bool:
    """Gone from the process table: it ended and its parent has collected its exit status."""
    return _stat(pid) is None


def running(pid: int) -> bool:
    """A zombie has ended: it only waits for its parent to collect its status."""
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def _parents() -> dict[int, int]:
    """Every process's parent, by PID."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))):
            parents[int(entry.name)] = int(stat[1])
    return parents


def children(pid: int) -> set[int]:
    return {child for child, parent in _parents().items() if parent == pid}


def descendants(pid: int) -> set[int]:
    parents = _parents()
    found: set[int] = set()
    generation = {pid}
    while generation:
        generation = {child for child, parent in parents.items() if parent in generation}
        found |= generation
    return found


def still_running(pids: set[int], timeout: float) -> set[int]:
    """Waits up to timeout for every pid to end; answers those still running."""
    deadline = time.monotonic() + timeout
    while (alive := {pid for pid in pids if running(pid)}) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError):
        return "(gone)"


def port_is_free(port: int) -> bool:
    """True when a server could listen on the loopback port again."""
    with socket.socket() as sock:
        # As servers do: connections still in TIME_WAIT after a server has gone do not hold the port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def adopt_orphans() -> None:
    """Makes this process the parent of any descendant whose own parent dies, instead of PID 1.

    A process leaked by a child that has exited then stays among this process's descendants.
    """
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise LookupError(f"{field} not in /proc/{pid}/status")


def resident_kib(pid: int) -> int:
    return _status_kib(pid, "VmRSS")


def peak_resident_kib(pid: int) -> int:
    """The most memory the process has held since start, or since `reset_peak_resident`."""
    return _status_kib(pid, "VmHWM")


def reset_peak_resident(pid: int) -> None:
    """Sets the peak to the current resident size, so a later peak shows what happened after (Linux 4.0+)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def open_file_descriptors(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def cpu_seconds(pid: int) -> float:
    """CPU time the process has used so far, every thread's, user and system (utime + stime)."""
    stat = _stat(pid)
    if stat is None:
        raise ProcessLookupError(pid)
    # /proc/<pid>/stat fields 14 and 15, in clock ticks; the list starts at field 3 (state).
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")

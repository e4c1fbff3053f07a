"""A benchmark process's own peak memory.

``getrusage(RUSAGE_SELF).ru_maxrss`` is not that on Linux: a child started by fork and exec keeps
its parent's high-water mark, so a contender run from a parent that had built the input data
would report at least the parent's peak. ``VmHWM`` in ``/proc/self/status`` is the peak resident
set of this process's own address space, which exec starts afresh.
"""


def peak_rss_kb() -> int:
    """Peak resident set size of this process since its exec, in KiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("/proc/self/status has no VmHWM line")

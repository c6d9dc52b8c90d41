"""Process-tree CPU time, for benchmarks that compare servers or Ray runs by CPU per item."""

from __future__ import annotations


def process_tree_cpu_s(pid: int | None = None) -> float:
    """CPU seconds used so far by process `pid` (default: this one) and every live descendant
    (local Ray's GCS, raylet and workers are descendants; a process that ended between two
    readings is missed). 0.0 when `pid` itself is gone."""
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total

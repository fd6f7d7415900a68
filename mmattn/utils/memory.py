"""Peak resident memory of this process, for the benchmark tools (Linux ``/proc``).

``ru_maxrss`` is no use in a child process: it starts from the high-water mark of the parent
it was forked from. ``VmHWM`` in ``/proc/self/status`` is the process's own, and writing ``5``
to ``/proc/self/clear_refs`` (Linux >= 4.0) resets it to the current resident size.
"""
from typing import Optional

__all__ = ['proc_status_bytes', 'reset_peak_rss']


def proc_status_bytes(key: str) -> int:
    """A ``/proc/self/status`` field (``'VmHWM'``, ``'VmRSS'``) in bytes."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1]) * 1024
    raise KeyError(f'{key} not in /proc/self/status')


def reset_peak_rss() -> Optional[str]:
    """Reset ``VmHWM`` to the current resident size; the reason if the kernel refuses."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError as e:
        return f'/proc/self/clear_refs: {e}'
    return None

"""Peak memory of this process, for the benchmark tools: resident memory on the CPU (Linux
``/proc``), allocated memory on a CUDA device.

CPU: ``ru_maxrss`` is no use in a child process: it starts from the high-water mark of the
parent it was forked from. ``VmHWM`` in ``/proc/self/status`` is the process's own, and writing
``5`` to ``/proc/self/clear_refs`` (Linux >= 4.0) resets it to the current resident size.

CUDA: ``torch.cuda.max_memory_allocated`` is the high-water mark of the tensors the caching
allocator has handed out (not what it reserved from the driver, which depends on its history),
and ``torch.cuda.reset_peak_memory_stats`` lowers it to what is allocated now. Both are per
device and per process.

The same three calls serve both: ``reset_peak(device)``, then ``base = peak_bytes(device)``,
then the work, then ``peak_bytes(device) - base`` is what the work added at its peak.
"""
from typing import Optional

__all__ = ['proc_status_bytes', 'reset_peak_rss', 'reset_peak', 'peak_bytes']


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


def _cuda(device) -> bool:
    return str(device).startswith('cuda')


def reset_peak(device='cpu') -> Optional[str]:
    """Lower the peak reading of ``device`` to the present use; the reason if it cannot be.

    On CUDA, pending kernels are waited for first: their allocations belong to the work before.
    """
    if _cuda(device):
        import torch
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        return None
    return reset_peak_rss()


def peak_bytes(device='cpu') -> int:
    """The peak reading of ``device``: ``VmHWM`` on the CPU, the CUDA allocator's
    ``max_memory_allocated`` on a CUDA device (after waiting for its pending kernels)."""
    if _cuda(device):
        import torch
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device)
    return proc_status_bytes('VmHWM')

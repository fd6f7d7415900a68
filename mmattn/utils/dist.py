"""Distributed training on CPU-only machines with mmengine.

mmengine 0.10's ``init_dist`` calls ``torch.cuda.set_device``, which fails on a CPU-only torch,
and its default DDP wrapper passes ``device_ids=[local_rank]``, which DDP rejects for modules on
the CPU. On such a machine the process group is set up here with gloo (mmengine's Runner skips
``init_dist`` when a group already exists) and the wrapper gets ``device_ids=None``. With a GPU
nothing changes: mmengine's own NCCL path runs.
"""
import os

import torch
import torch.distributed as dist


def _cpu_only() -> bool:
    return not torch.cuda.is_available()


def init_cpu_distributed(launcher: str) -> bool:
    """Initialise a gloo process group for ``launcher='pytorch'`` on a CPU-only machine.

    Returns True if it did. torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT)
    is read by ``init_process_group``.
    """
    if launcher == 'none' or not _cpu_only() or dist.is_initialized():
        return False
    if launcher != 'pytorch':
        raise RuntimeError(
            f'Distributed training on a machine without a GPU is supported with '
            f'--launcher pytorch (tools/dist_train.sh), not {launcher!r}.')
    dist.init_process_group(backend='gloo')
    return True


def adapt_cfg_for_cpu_distributed(cfg) -> None:
    """Make the config's distributed settings work on CPU (no-op with a GPU)."""
    if cfg.get('launcher', 'none') == 'none' or not _cpu_only():
        return
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    os.environ.setdefault('LOCAL_RANK', '0')


def close_distributed() -> None:
    """At the end of a distributed run, wait for every process and close the process group,
    so that no process exits while another one still exchanges data with it (gloo aborts a
    process whose peer went away)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()

"""The pinned stack's deprecation notices are dropped, by message and module, and no others,
once a tool has installed the filters (``silence_pinned_warnings``; importing mmattn does not).

Each case runs in a fresh interpreter: pytest records warnings itself and resets the filters
around every test, so only a process of its own shows what a user's run prints.
"""
import os
import subprocess
import sys
import textwrap

from tests.test_tools.toy_run import ROOT

PKG = 'pkg_resources is deprecated as an API'


def run_py(code, **env):
    # one stream, unbuffered: the output in the order it was written
    proc = subprocess.run([sys.executable, '-c', textwrap.dedent(code)], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=600, env=dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1',
                                                PYTHONUNBUFFERED='1', **env))
    assert proc.returncode == 0, proc.stdout[-3000:]
    return proc.stdout


def test_pkg_resources_silenced_only_where_mmengine_raises_it():
    out = run_py("""
        import warnings
        from mmengine.utils import is_installed
        warnings.warn('before the filters: a notice of the user', UserWarning)
        from mmattn.utils import silence_pinned_warnings
        silence_pinned_warnings()
        assert is_installed('mmengine')  # imports pkg_resources, then reloads it
        warnings.warn('after the filters: another notice of the user', UserWarning)
        # the same text from the user's own code is not ours to hide
        warnings.warn('pkg_resources is deprecated as an API (raised by the user)', UserWarning)
    """)
    assert 'before the filters: a notice of the user' in out
    assert 'after the filters: another notice of the user' in out
    assert out.count(PKG) == 1 and f'{PKG} (raised by the user)' in out, out


def test_without_the_filters_the_notices_show():
    """The control: the same calls without the filters print both notices (the test can fail),
    also after ``import mmattn``, which installs none."""
    out = run_py("""
        import mmattn
        from mmengine.utils import is_installed
        assert is_installed('mmengine')
    """)
    assert out.count(PKG) == 2, out


def test_fileclient_records_dropped_others_kept():
    out = run_py("""
        import logging
        from mmengine.fileio import FileClient
        from mmengine.logging import MMLogger, print_log
        from mmattn.utils import silence_pinned_notices
        logger = MMLogger.get_instance('noise-test', log_level='INFO')
        FileClient.infer_client(None, '/tmp')  # before: both notices
        print('--- filter ---', flush=True)
        silence_pinned_notices(logger)
        silence_pinned_notices(logger)  # once is enough
        assert sum(type(f).__name__ == 'PinnedNoticeFilter' for f in logger.filters) == 1
        FileClient.infer_client(None, '/tmp')
        print_log('another mmengine warning', logger='current', level=logging.WARNING)
    """)
    before, after = out.split('--- filter ---')
    assert '"FileClient" will be deprecated' in before and '"HardDiskBackend"' in before
    assert 'FileClient' not in after and 'HardDiskBackend' not in after, after
    assert 'another mmengine warning' in after


def test_broadcast_buffers_silenced_in_mmengine_wrapper_only():
    out = run_py("""
        import torch
        import torch.distributed as dist
        from mmengine.model import MMDistributedDataParallel
        from mmattn.utils import silence_pinned_warnings
        silence_pinned_warnings()
        dist.init_process_group('gloo', rank=0, world_size=1)
        MMDistributedDataParallel(module=torch.nn.Linear(2, 2), broadcast_buffers=False)
        print('--- direct ---', flush=True)
        torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(2, 2), broadcast_buffers=False)
        dist.destroy_process_group()
    """, MASTER_ADDR='127.0.0.1', MASTER_PORT='29731')
    wrapped, direct = out.split('--- direct ---')
    assert 'broadcast_buffers' not in wrapped, wrapped
    assert '`broadcast_buffers` is deprecated' in direct, direct

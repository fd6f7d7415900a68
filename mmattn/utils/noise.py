"""Silence the deprecation notices our pinned stack prints on every run, and nothing else.

The pins (mmengine 0.10.7 on torch 2.13 with setuptools < 81, which mmcv 2.1.0's build needs)
make every tool print notices the user can do nothing about:

* ``pkg_resources is deprecated as an API`` (setuptools, a ``UserWarning``), twice a run:
  mmengine's ``is_installed`` imports ``pkg_resources`` and then reloads it;
* ``"FileClient" will be deprecated in future`` and ``"HardDiskBackend" is the alias of
  "LocalBackend"``: mmengine's own checkpoint and logger hooks still build the ``FileClient``
  they deprecate; these are log records of mmengine's logger, not Python warnings;
* ```broadcast_buffers` is deprecated`` (torch's DDP, a ``FutureWarning``), once per process
  of a distributed run: mmengine's DDP wrapper passes ``broadcast_buffers=False``, which torch's
  own notice says to keep for rank-local buffers (batch-norm statistics) until torch offers
  ``init_sync_buffers``.

Each is matched by its message, its category and the module it is attributed to, so the same
notice raised from the user's own code, and every other warning, still shows. Our tools install
these filters when they start (``tools/train.py``, ``tools/test.py``, ``tools/analysis/``);
importing mmattn does not.
"""
import logging
import warnings

__all__ = ['PINNED_LOG_NOTICES', 'PinnedNoticeFilter', 'silence_pinned_notices',
           'silence_pinned_warnings']

# (message regex, category, module regex): warnings.filterwarnings matches both at the start;
# the module is the one the warning's ``stacklevel`` points at, and \Z makes it match in full.
PINNED_WARNINGS = (
    # the import, then the reload (which the warning's stacklevel pins on importlib.reload)
    (r'pkg_resources is deprecated as an API', UserWarning, r'mmengine\.utils\.package_utils\Z'),
    (r'pkg_resources is deprecated as an API', UserWarning, r'importlib\Z'),
    (r'`broadcast_buffers` is deprecated', FutureWarning,
     r'mmengine\.model\.wrappers\.distributed\Z'),
)

# mmengine's own deprecation records (print_log) that its own hooks trigger
PINNED_LOG_NOTICES = (
    '"FileClient" will be deprecated in future.',
    '"HardDiskBackend" is the alias of "LocalBackend" and the former will be deprecated',
)


def silence_pinned_warnings() -> None:
    """Install the warning filters (idempotent: ``filterwarnings`` drops a duplicate)."""
    for message, category, module in PINNED_WARNINGS:
        warnings.filterwarnings('ignore', message=message, category=category, module=module)


class PinnedNoticeFilter(logging.Filter):
    """Drops mmengine's deprecation records listed in :data:`PINNED_LOG_NOTICES`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING:
            return True
        message = record.getMessage()
        return not any(message.startswith(notice) for notice in PINNED_LOG_NOTICES)


def silence_pinned_notices(logger: logging.Logger) -> None:
    """Install :class:`PinnedNoticeFilter` on ``logger`` (mmengine's ``runner.logger``, which
    ``print_log(logger='current')`` writes to), once."""
    if not any(isinstance(f, PinnedNoticeFilter) for f in logger.filters):
        logger.addFilter(PinnedNoticeFilter())

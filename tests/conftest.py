import pytest
from mmengine.registry import DefaultScope


def pytest_configure(config):
    # Deprecations raised inside torch/mmengine/mmcv at every call drown the report.
    for line in ('ignore::DeprecationWarning', 'ignore::FutureWarning',
                 'ignore::torch.jit.TracerWarning', 'ignore::UserWarning:torch.onnx.*',
                 'ignore:pkg_resources is deprecated as an API:UserWarning'):
        config.addinivalue_line('filterwarnings', line)


@pytest.fixture(autouse=True)
def no_default_scope():
    """Start every test with no mmengine default scope, and restore it afterwards.

    A Runner or config built in-process leaves its scope ('mmdet', 'mmseg') as the current
    one; unscoped names in later tests would then resolve in that library's registry.
    """
    saved = DefaultScope._instance_dict.copy()
    DefaultScope._instance_dict.clear()
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(saved)

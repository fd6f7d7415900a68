import pytest  # noqa: F401


def pytest_configure(config):
    # Deprecations raised inside torch/mmengine/mmcv at every call drown the report.
    for line in ('ignore::DeprecationWarning', 'ignore::FutureWarning',
                 'ignore::torch.jit.TracerWarning', 'ignore::UserWarning:torch.onnx.*'):
        config.addinivalue_line('filterwarnings', line)

"""mmattn: CNN attention modules as OpenMMLab plugins."""
import os.path as osp

from setuptools import find_packages, setup


def read_version():
    namespace = {}
    with open(osp.join(osp.dirname(__file__), 'mmattn', 'version.py')) as f:
        exec(f.read(), namespace)
    return namespace['__version__']


setup(
    name='mmattn',
    version=read_version(),
    description='CNN attention modules (SE, CBAM, Non-local, DANet, ...) '
    'for mmdetection, mmsegmentation and mmpretrain',
    long_description=open('README.md').read() if osp.exists('README.md') else '',
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    packages=find_packages(include=['mmattn', 'mmattn.*']),
    python_requires='>=3.8',
    # mmdet 3.3.0 and mmseg 1.2.2 refuse mmcv >= 2.2.0; mmpretrain 1.2.0 is the last release
    # that accepts mmcv 2.1 (it asks for mmcv>=2.0,<2.4 and mmengine>=0.8.3,<1.0).
    install_requires=[
        # torch.nn.attention.sdpa_kernel with priorities and cuDNN attention (the lean
        # attention's CUDA paths), autocast queried by device type
        'torch>=2.5',
        'numpy>=1.22',
        'mmengine>=0.10.0,<1.0.0',
        'mmcv>=2.0.0,<2.2.0',
        'mmdet>=3.0.0,<3.4.0',
        'mmsegmentation>=1.0.0,<1.3.0',
        'mmpretrain>=1.0.0,<1.3.0',
    ],
    extras_require={
        'tests': [
            'pytest>=7',
            'scikit-learn>=1.0',
            'onnx>=1.14',
            'onnxruntime>=1.16',
            'onnxscript',
            'pycocotools>=2.0.6',
            'cityscapesscripts>=2.2',
            # .safetensors checkpoints in tools/model_converters
            'safetensors>=0.4',
            # the documentation build, which tests/test_docs.py runs with warnings as errors
            'sphinx>=8.1,<10',
            'myst-parser>=4.0,<6',
            'furo>=2024.8.6',
        ],
    },
    entry_points={},
    zip_safe=False,
)

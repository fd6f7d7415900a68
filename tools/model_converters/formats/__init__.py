"""Every converter format: one module per source family, each with a ``FORMATS`` list.

A new family is a new module here defining ``FORMATS = [ConverterFormat(...), ...]``; it is
found by name, no registration needed. A format's ``convert`` typically is::

    def convert(src_state, depth):
        mapper = KeyMapper(src_state, 'my-format')

        def attention(m, src, dst, stage, block):  # src/dst: 'layer1.0.' prefixes
            m.take(src + 'cbam.mlp.1.weight', dst + 'cbam.fc1.weight', 'cbam',
                   linear_to_conv1x1)

        map_resnet(mapper, depth, block_hook=attention)
        mapper.drop_matching(r'fc[.].*', 'ImageNet classifier head')
        return mapper.finish()

with ``backbone(depth)`` returning the config whose state dict the result must equal (checked
by ``convert.py``: unfilled, unknown and misshapen tensors are refused by name).
"""
import importlib
import pkgutil
from collections import OrderedDict
from typing import Dict

from ..common import ConverterFormat


def discover() -> Dict[str, ConverterFormat]:
    """name -> format, over every module of this package, in module order."""
    found: Dict[str, ConverterFormat] = OrderedDict()
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f'{__name__}.{info.name}')
        for fmt in getattr(module, 'FORMATS', ()):
            if not isinstance(fmt, ConverterFormat):
                raise TypeError(f'{module.__name__}.FORMATS holds {fmt!r}, not a '
                                f'ConverterFormat')
            if fmt.name in found:
                raise ValueError(f'converter format {fmt.name!r} is defined twice (again in '
                                 f'{module.__name__})')
            found[fmt.name] = fmt
    return found


FORMATS = discover()

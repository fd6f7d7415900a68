"""An ImageNet checkpoint of the plain ResNet loads into the attention backbones.

mmdet's configs load ``torchvision://resnet50`` through ``init_cfg=dict(type='Pretrained')``.
Without network access the checkpoint is made here from the plain backbone in torchvision's
layout (its weights plus the ``fc`` layer, which a backbone does not have): loading it must
leave only the attention modules' weights missing.
"""
import logging
import re

import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.runner import load_checkpoint

from tests.helpers import randomize_
from .reference import TorchvisionLayoutResNet50
from .toy_plugins import ZeroGammaNorm

PLUGINS = [dict(cfg=dict(type='mmattn.SE'), position='after_conv3'),
           dict(cfg=dict(type=ZeroGammaNorm), position='after_conv2', blocks='last')]
STAGE_PLUGINS = [dict(cfg=dict(type='mmattn.SE'), stages=(True, True, True, False))]


class _Capture(logging.Handler):

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _reported_keys(messages, what):
    """The keys mmengine's load_state_dict lists as ``missing`` / ``unexpected``."""
    pattern = {'missing': r'missing keys in source state_dict: (.*)',
               'unexpected': r'unexpected key in source state_dict: (.*)'}[what]
    keys = []
    for msg in messages:
        for found in re.findall(pattern, msg):
            keys += [k.strip() for k in found.split(',') if k.strip()]
    return keys


def _plugin_prefixes(net):
    """State-dict prefixes of every attention module in the backbone, found by walking it."""
    prefixes = []
    for i in range(1, net.num_stages + 1):
        for j, block in enumerate(getattr(net, f'layer{i}')):
            for pos in ('after_conv1', 'after_conv2', 'after_conv3'):
                for name in getattr(block, f'{pos}_plugin_names', []):
                    prefixes.append(f'layer{i}.{j}.{name}.')
        if f'layer{i}_attn' in net._modules:
            prefixes.append(f'layer{i}_attn.')
    return prefixes


def _torchvision_style_checkpoint(plain, path):
    randomize_(plain, seed=3)
    state = dict(plain.state_dict())
    state['fc.weight'] = torch.randn(1000, plain.feat_dim)
    state['fc.bias'] = torch.randn(1000)
    torch.save(state, path)
    return state


def _check_loaded(net, state, messages):
    missing = _reported_keys(messages, 'missing')
    unexpected = _reported_keys(messages, 'unexpected')
    prefixes = _plugin_prefixes(net)
    # SE in every block, ZeroGammaNorm in each stage's last block, SE after stages 1-3
    assert len(prefixes) == sum(net.stage_blocks) + net.num_stages + 3
    assert missing, 'the attention weights should be reported missing'
    stray = [k for k in missing if not k.startswith(tuple(prefixes))]
    assert not stray, f'backbone weights not loaded: {stray}'
    # every attention weight is reported (BN step counters aside, as mmengine does)
    attn_keys = {k for k in net.state_dict() if k.startswith(tuple(prefixes))
                 and not k.endswith('num_batches_tracked')}
    assert set(missing) == attn_keys
    assert sorted(unexpected) == ['fc.bias', 'fc.weight']
    own = net.state_dict()
    for k, v in state.items():
        if not k.startswith('fc.'):
            assert torch.equal(own[k], v), k


def _backbones():
    cases = []
    try:
        from mmdet.models.backbones import ResNet
        from mmattn.models.backbones import AttnResNet
        cases.append(pytest.param(ResNet, AttnResNet, dict(depth=50), id='mmdet-r50'))
        cases.append(pytest.param(ResNet, AttnResNet, dict(depth=18), id='mmdet-r18'))
    except ImportError:
        cases.append(pytest.param(None, None, None, id='mmdet',
                                  marks=pytest.mark.skip(reason='needs mmdet')))
    try:
        from mmseg.models.backbones import ResNetV1c
        from mmattn.models.backbones import AttnResNetV1c
        cases.append(pytest.param(ResNetV1c, AttnResNetV1c,
                                  dict(depth=50, strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4),
                                       contract_dilation=True), id='mmseg-v1c-r50'))
    except ImportError:
        cases.append(pytest.param(None, None, None, id='mmseg',
                                  marks=pytest.mark.skip(reason='needs mmseg')))
    return cases


@pytest.mark.parametrize('plain_cls,cls,kwargs', _backbones())
def test_pretrained_init_cfg_misses_only_attention(plain_cls, cls, kwargs, tmp_path):
    path = str(tmp_path / 'resnet.pth')
    state = _torchvision_style_checkpoint(plain_cls(**kwargs), path)
    net = cls(**kwargs, plugins=PLUGINS, stage_plugins=STAGE_PLUGINS,
              init_cfg=dict(type='Pretrained', checkpoint=path))
    capture = _Capture()
    logger = MMLogger.get_current_instance()
    logger.addHandler(capture)
    try:
        net.init_weights()
    finally:
        logger.removeHandler(capture)
    _check_loaded(net, state, capture.messages)


@pytest.mark.parametrize('plain_cls,cls,kwargs', _backbones())
def test_load_checkpoint_misses_only_attention(plain_cls, cls, kwargs, tmp_path):
    path = str(tmp_path / 'resnet.pth')
    state = _torchvision_style_checkpoint(plain_cls(**kwargs), path)
    net = cls(**kwargs, plugins=PLUGINS, stage_plugins=STAGE_PLUGINS)
    logger = logging.getLogger('mmattn-test-load-checkpoint')
    capture = _Capture()
    logger.addHandler(capture)
    try:
        load_checkpoint(net, path, map_location='cpu', strict=False, logger=logger)
    finally:
        logger.removeHandler(capture)
    _check_loaded(net, state, capture.messages)
    # strict loading names the attention keys as what is missing
    with pytest.raises(RuntimeError, match=r'missing keys in source state_dict: layer1\.0\.se'):
        load_checkpoint(net, path, strict=True, logger='silent')


def test_torchvision_resnet50_loads_into_the_classifier():
    """torchvision's ResNet-50 weights, fc included, give torchvision's logits."""
    tv = pytest.importorskip('torchvision.models')
    pytest.importorskip('mmdet.models', reason='needs mmdet')
    from mmattn.models.backbones import count_parameters, resnet50_classifier
    ref = tv.resnet50()
    assert count_parameters(ref) == 25_557_032
    randomize_(ref, scale=0.05).double().eval()
    clf = resnet50_classifier(plugins=[dict(cfg=dict(type='mmattn.SE'),
                                            position='after_conv3')])
    state = {(k if k.startswith('fc.') else f'backbone.{k}'): v
             for k, v in ref.state_dict().items()}
    result = clf.load_state_dict(state, strict=False)
    assert not result.unexpected_keys
    assert result.missing_keys and all('.se.' in k for k in result.missing_keys)

    plain = resnet50_classifier().double().eval()
    plain.load_state_dict(state)  # strict: same names, same shapes
    assert count_parameters(plain) == count_parameters(ref)
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        expected = ref(x)
        assert torch.isfinite(expected).all()
        torch.testing.assert_close(plain(x), expected, rtol=1e-10, atol=1e-10)


def test_torchvision_layout_resnet50_is_our_plain_classifier():
    """Without torchvision: its ResNet-50 layout written out has our names, shapes, outputs."""
    pytest.importorskip('mmdet.models', reason='needs mmdet')
    from mmattn.models.backbones import count_parameters, resnet50_classifier
    ref = randomize_(TorchvisionLayoutResNet50(), scale=0.05).double().eval()
    assert count_parameters(ref) == 25_557_032
    state = {(k if k.startswith('fc.') else f'backbone.{k}'): v
             for k, v in ref.state_dict().items()}
    clf = resnet50_classifier().double().eval()
    assert {k: v.shape for k, v in clf.state_dict().items()} == {
        k: v.shape for k, v in state.items()}
    clf.load_state_dict(state)
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        expected = ref(x)
        assert torch.isfinite(expected).all()
        torch.testing.assert_close(clf(x), expected, rtol=1e-10, atol=1e-10)

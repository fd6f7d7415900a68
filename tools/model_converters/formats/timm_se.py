"""timm's SE-ResNets and SE-ResNeXts (``timm/models/resnet.py``, ``attn_layer='se'``).

Layout (read in huggingface/pytorch-image-models ``timm/models/resnet.py`` and
``timm/layers/squeeze_excite.py``): torchvision's ResNet names (``conv1``, ``bn1``,
``layer{i}.{j}.conv{1,2,3}``/``bn{1,2,3}``, ``downsample.0/1``, classifier ``fc``), the
stride in the 3x3 conv, and in each block an ``SEModule`` named ``se`` after ``bn3`` (after
``bn2`` in the BasicBlock of seresnet18/34), before the residual addition: ``se.fc1`` and
``se.fc2``, 1x1 convs with biases, ReLU between, sigmoid gate. That is ``mmattn.SE`` at
``after_conv3``, with the same names, so the SE tensors keep their keys.

timm sizes the reduced width as ``make_divisible(C / 16, 8)`` (at least 8); from 128 channels
up that is ``C // 16``, ``mmattn.SE(reduction=16)``'s width, but the 64 channels of
seresnet18/34's first stage get 8: their config has ``reduction=8`` in stage 1.

The ``d`` variants (``seresnet152d``, ``seresnext101d_32x8d``) have the deep stem
(``conv1.0/1/3/4/6`` + ``bn1``: 3x3 convs 32, 32, 64 wide) and an average pool before each
downsampling conv (``downsample.1/2``): mmdet's ``deep_stem=True, avg_down=True`` with 64 stem
channels.

timm's anti-aliased ``seresnetaa50d`` and ``seresnextaa101d_32x8d`` replace each stride-2 3x3
conv by a stride-1 conv and a 2x2 average pool (``aa_layer=nn.AvgPool2d``, no tensors), and the
stem's max-pool by a 2x2 average pool: their checkpoints have exactly the tensors, shapes and
key order of ``seresnet50d`` and ``seresnext101d_32x8d``, and only a name tells them apart (the
released file's, the Hugging Face hub repository's, its ``config.json``'s ``architecture``, a
timm training checkpoint's ``arch``). Where one names them, the conversion is refused
(``identify.py``); ``--list`` tells users to check the others.
"""
from ..common import SE_PLUGIN, ConverterFormat, convert_se_resnet

# (timm model names, why our backbones cannot express them): refused by name (their tensors
# differ from every format's too)
REFUSED = (
    (('seresnext26d_32x4d', 'seresnext26t_32x4d', 'seresnext26tn_32x4d'),
     '2 blocks per stage (ResNet-26), a depth mmdet\'s ResNet does not have; the "t" stems are '
     'also tiered (24, 32, 64 wide)'),
    (('seresnet50t', ), 'tiered deep stem (24, 32, 64 wide); mmdet\'s deep stem is (32, 32, 64)'),
    (('seresnet200d', 'seresnet269d'),
     'blocks per stage (3, 24, 36, 3) and (3, 30, 48, 8), depths mmdet\'s ResNet does not have'),
    (('seresnet33ts', 'seresnext26ts'), 'timm ByobNet layouts, not ResNets'),
    (('seresnextaa201d_32x8d', ),
     'anti-aliased downsampling (aa_layer=AvgPool2d) and blocks per stage (3, 24, 36, 4), '
     'neither of which our backbones have'),
    (('senet154', 'gluon_senet154', 'legacy_senet154'),
     'a deep stem 64, 64, 128 wide, 3x3 downsampling convs and first 1x1 convs of half the '
     'block width (reduce_first=2)'),
)
# timm's anti-aliased SE nets (aa_layer=nn.AvgPool2d): each stride-2 3x3 conv of a block runs at
# stride 1 and is followed by a 2x2 average pool, and the stem's max-pool is a 2x2 average
# pool. An average pool has no tensors, so their checkpoints have exactly the keys, shapes and
# order of the plain nets' of the same depth.
AA_WHY = ('timm\'s anti-aliased net (aa_layer=AvgPool2d: each stride-2 3x3 conv runs at stride '
          '1 followed by a 2x2 average pool, and the stem max-pool is a 2x2 average pool), which '
          'no backbone of ours computes; its checkpoint has exactly the tensors of {plain}, so '
          'only its name tells them apart')
AA_NETS = {
    'seresnetaa50d': 'the SE-ResNet-50-D this format converts',
    'seresnextaa101d_32x8d': 'seresnext101d_32x8d',
}
UNSUPPORTED = tuple(f'{" / ".join(names)}: {why}' for names, why in REFUSED) + (
    'seresnetaa50d / seresnextaa101d_32x8d / seresnextaa201d_32x8d: anti-aliased downsampling '
    '(a 2x2 average pool after each 3x3 conv that would have stride 2, run at stride 1, and in '
    'place of the stem max-pool), which our backbones lack', )


def _lookalikes(*names):
    return tuple((n, AA_WHY.format(plain=AA_NETS[n])) for n in names)


def _backbone(groups: int, base_width: int, deep: bool):
    def build(depth: int) -> dict:
        cfg = dict(type='mmattn.AttnResNet', depth=depth)
        if groups > 1:
            cfg = dict(type='mmattn.AttnResNeXt', depth=depth, groups=groups,
                       base_width=base_width)
        if deep:
            cfg.update(deep_stem=True, avg_down=True)
        if depth in (18, 34):
            # stage 1 is 64 wide, and timm's SE keeps 8 channels there, 64 // 8
            cfg['plugins'] = [
                dict(SE_PLUGIN, cfg=dict(type='mmattn.SE', reduction=8),
                     stages=(True, False, False, False)),
                dict(SE_PLUGIN, stages=(False, True, True, True))
            ]
        else:
            cfg['plugins'] = [dict(SE_PLUGIN)]
        return cfg

    return build


def _convert(name: str, deep: bool):
    def convert(src_state, depth):
        return convert_se_resnet(name, src_state, depth, 'se', 'fc', deep_stem=deep,
                                 avg_down=deep,
                                 src_downsample=('downsample.1', 'downsample.2') if deep else
                                 ('downsample.0', 'downsample.1'))

    return convert


TIMM = 'https://github.com/huggingface/pytorch-image-models'
RESULTS = f'{TIMM}/blob/main/results/results-imagenet.csv'


def _fmt(name, description, published, figures, groups=1, base_width=4, deep=False,
         depths=(50, 101, 152), networks=(), lookalikes=()):
    return ConverterFormat(
        name=name, description=description, published=published,
        backbone=_backbone(groups, base_width, deep), convert=_convert(name, deep),
        depths=depths, figures=figures, unsupported=UNSUPPORTED if name == 'timm-se' else (),
        networks=networks, lookalikes=lookalikes,
        refused_networks=tuple((n, why) for names, why in REFUSED for n in names)
        if name == 'timm-se' else ())


FORMATS = [
    _fmt('timm-se', 'timm seresnet18/34/50/101/152 (SE after the last BN of every block)',
         f'timm seresnet50.ra2_in1k / .a1_in1k / .a2_in1k / .a3_in1k (Hugging Face hub '
         f'timm/seresnet50.*; {TIMM}/releases); seresnet18/34/101/152 are not released',
         (f'ImageNet top-1 at 224: seresnet50.ra2_in1k 80.26, .a1_in1k 80.01, .a2_in1k 80.10, '
          f'.a3_in1k 77.04 ({RESULTS})', ),
         depths=(18, 34, 50, 101, 152),
         networks=('seresnet18', 'seresnet34', 'seresnet50', 'seresnet101', 'seresnet152')),
    _fmt('timm-se-d', 'timm seresnet152d (deep stem, average-pool downsampling)',
         'timm seresnet152d.ra2_in1k (Hugging Face hub timm/seresnet152d.ra2_in1k)',
         (f'ImageNet top-1: seresnet152d.ra2_in1k 83.70 at 256, 84.34 at 320 ({RESULTS})', ),
         deep=True, networks=('seresnet152d', ),
         lookalikes=_lookalikes('seresnetaa50d')),
    _fmt('timm-se-x32x4d', 'timm seresnext50_32x4d / seresnext101_32x4d',
         'timm seresnext50_32x4d.racm_in1k, seresnext50_32x4d.gluon_in1k, '
         'seresnext101_32x4d.gluon_in1k (Hugging Face hub timm/...)',
         (f'ImageNet top-1 at 224: seresnext50_32x4d.racm_in1k 81.27, .gluon_in1k 79.92, '
          f'seresnext101_32x4d.gluon_in1k 80.89 ({RESULTS})', ),
         groups=32, base_width=4,
         networks=('seresnext50_32x4d', 'seresnext101_32x4d', 'gluon_seresnext50_32x4d',
                   'gluon_seresnext101_32x4d')),
    _fmt('timm-se-x32x8d', 'timm seresnext101_32x8d',
         'timm seresnext101_32x8d.ah_in1k (Hugging Face hub timm/seresnext101_32x8d.ah_in1k)',
         (f'ImageNet top-1 at 224: seresnext101_32x8d.ah_in1k 83.62 ({RESULTS})', ),
         groups=32, base_width=8, networks=('seresnext101_32x8d', )),
    _fmt('timm-se-x64x4d', 'timm seresnext101_64x4d',
         'timm seresnext101_64x4d.gluon_in1k (Hugging Face hub '
         'timm/seresnext101_64x4d.gluon_in1k)',
         (f'ImageNet top-1 at 224: seresnext101_64x4d.gluon_in1k 80.88 ({RESULTS})', ),
         groups=64, base_width=4,
         networks=('seresnext101_64x4d', 'gluon_seresnext101_64x4d')),
    _fmt('timm-se-xd-32x8d', 'timm seresnext101d_32x8d (deep stem, average-pool downsampling)',
         'timm seresnext101d_32x8d.ah_in1k (Hugging Face hub timm/seresnext101d_32x8d.ah_in1k)',
         (f'ImageNet top-1 at 224: seresnext101d_32x8d.ah_in1k 83.70 ({RESULTS})', ),
         groups=32, base_width=8, deep=True, networks=('seresnext101d_32x8d', ),
         lookalikes=_lookalikes('seresnextaa101d_32x8d')),
]

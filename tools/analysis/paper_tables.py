"""The papers' ImageNet tables next to ours: parameters and FLOPs of every configs/imagenet/ model.

    python tools/analysis/paper_tables.py [--shape 224] [--configs NAME ...]

For each ImageNet config the classifier it trains (the config's backbone + global average
pool + its linear head) is counted at 224x224 by :mod:`mmattn.utils.complexity` (mmengine's
analysis, as ``tools/analysis/get_flops.py``: one FLOP is one multiply-add, element-wise
operators uncounted), and printed beside the figures the module's paper (or its authors'
repository) reports for that network, each with its source. The backbone is built from mmattn's
registry, so no mmpretrain import is needed.

Papers count differently (some leave out the classifier, some count FLOPs of other layers), so
the FLOPs agree to a few percent at best; parameter counts agree exactly, to the digits the
source prints, where it counts the whole network (``tests/test_tools/test_imagenet.py`` and
``tests/test_models/test_backbones/test_param_counts.py`` check those).
"""
import argparse
import glob
import os.path as osp
import sys
from typing import Dict, List, Optional, Tuple

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(ROOT, 'configs', 'imagenet')

SENET = 'Hu et al., Squeeze-and-Excitation Networks, TPAMI 2020, Table 2'
CBAM = 'Woo et al., CBAM, ECCV 2018, Table 4'
TRIPLET = 'landskape-ai/triplet-attention README (ImageNet table, k = 7 / k = 3)'
SGE = 'Li et al., Spatial Group-wise Enhance, 2019, Table 1'
SRM = 'Lee et al., SRM, ICCV 2019, Table 1'
ECA = 'Wang et al., ECA-Net, CVPR 2020, Table 2 (their count leaves out part of the network)'
FCA = 'Qin et al., FcaNet, ICCV 2021, Table 3'
SKNET = 'Li et al., Selective Kernel Networks, CVPR 2019, Table 2 (implus/SKNet README)'
SIMAM = 'ZjjConan/SimAM README (ImageNet table)'
MMPRETRAIN = 'mmpretrain model zoo (configs/resnet, configs/seresnet metafiles)'

# config name -> (millions of parameters or None, GFLOPs or None, source), as published: the
# digits the source prints (SKNet's table gives 0.1 M)
PAPERS: Dict[str, Tuple[Optional[str], Optional[str], str]] = {
    'resnet50_8xb32_in1k': ('25.56', '4.12', MMPRETRAIN),
    'resnet50_se_8xb32_in1k': ('28.09', '3.87', SENET),
    'resnet50_cbam_8xb32_in1k': ('28.09', '3.864', CBAM),
    'resnet18_cbam_8xb32_in1k': ('11.78', '1.815', CBAM),
    'resnet34_cbam_8xb32_in1k': ('21.96', '3.665', CBAM),
    'resnet50_triplet_8xb32_in1k': ('25.56', '4.169', TRIPLET),
    'resnet18_triplet_8xb32_in1k': ('11.69', None, TRIPLET),
    'resnet50_sge_8xb32_in1k': ('25.56', '4.127', SGE),
    'resnet50_srm_8xb32_in1k': ('25.62', None, SRM),
    'resnet50_eca_8xb32_in1k': ('24.37', '3.86', ECA),
    'resnet18_eca_8xb32_in1k': ('11.15', '1.70', ECA),
    'resnet34_eca_8xb32_in1k': ('20.79', '3.43', ECA),
    'resnet50_fcanet_8xb32_in1k': ('28.07', '4.13', FCA),
    'resnext50-32x4d_sk_8xb32_in1k': ('27.5', '4.47', SKNET),
    'resnet18_simam_8xb32_in1k': ('11.69', '1.82', SIMAM),
    'resnet34_simam_8xb32_in1k': ('21.80', '3.67', SIMAM),
    'resnet50_simam_8xb32_in1k': ('25.56', '4.11', SIMAM),
}


def classifier_of(path: str):
    """The classifier a configs/imagenet/ config trains, built without mmpretrain."""
    from mmengine.config import Config

    from mmattn.models.backbones import ResNetClassifier
    from mmattn.registry import MODELS
    cfg = Config.fromfile(path)
    backbone = MODELS.build(dict(cfg.model.backbone, init_cfg=None))
    return ResNetClassifier(backbone, num_classes=cfg.model.head.num_classes).eval()


def count(path: str, shape: Tuple[int, int]) -> Tuple[int, float]:
    """(parameters, FLOPs) of the config's classifier at ``shape``."""
    from mmattn.utils.complexity import analyze_model
    model = classifier_of(path)
    x = torch.randn(1, 3, *shape, generator=torch.Generator().manual_seed(0))
    c = analyze_model(model, x)
    return c.params, c.flops


def rows(shape: Tuple[int, int], names: Optional[List[str]] = None) -> List[dict]:
    out = []
    for path in sorted(glob.glob(osp.join(CONFIGS, '*.py'))):
        name = osp.splitext(osp.basename(path))[0]
        if names and name not in names:
            continue
        params, flops = count(path, shape)
        p_params, p_flops, source = PAPERS.get(name, (None, None, ''))
        out.append(dict(config=name, params=params, flops=flops, paper_params=p_params,
                        paper_flops=p_flops, source=source))
    return out


def table(records: List[dict], shape: Tuple[int, int]) -> str:
    lines = [f'| config | params (M) | paper params (M) | GFLOPs ({shape[0]}x{shape[1]}) | '
             'paper GFLOPs | paper source |', '|---|---|---|---|---|---|']
    for r in records:
        lines.append(f'| `{r["config"]}` | {r["params"] / 1e6:.2f} | {r["paper_params"] or "-"} '
                     f'| {r["flops"] / 1e9:.3f} | {r["paper_flops"] or "-"} | '
                     f'{r["source"] or "-"} |')
    return '\n'.join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--shape', type=int, nargs='+', default=[224],
                        help='input size: S or H W (default 224)')
    parser.add_argument('--configs', nargs='*', help='config names (default: all)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    sys.path.insert(0, ROOT)
    from mmattn.utils.complexity import parse_shape
    shape = parse_shape(args.shape)
    print(table(rows(shape, args.configs), shape))
    return 0


if __name__ == '__main__':
    sys.exit(main())

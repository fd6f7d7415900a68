"""ResNet forward passes written out, with plugins where a test says they are.

The layers (convs, norms) are the network's own; the order of operations, where each plugin
runs and what it is fed is written here, independently of the backbone's forward code.
"""
import torch.nn.functional as F
from torch import nn

POSITIONS = ('after_conv1', 'after_conv2', 'after_conv3', 'after_block')


def _run(block, names, x):
    for name in names:
        x = getattr(block, name)(x)
    return x


def block_reference(block, x, plugins=None):
    """One block; ``plugins`` maps a position to the names of the block's plugins there."""
    plugins = plugins or {}
    p = {pos: plugins.get(pos, ()) for pos in POSITIONS}
    if hasattr(block, 'conv3'):  # Bottleneck
        out = F.relu(block.norm1(block.conv1(x)))
        out = _run(block, p['after_conv1'], out)
        out = F.relu(block.norm2(block.conv2(out)))
        out = _run(block, p['after_conv2'], out)
        out = block.norm3(block.conv3(out))
        out = _run(block, p['after_conv3'], out)
    else:  # BasicBlock: after_conv2 and after_conv3 both follow conv2 + norm2
        out = F.relu(block.norm1(block.conv1(x)))
        out = _run(block, p['after_conv1'], out)
        out = block.norm2(block.conv2(out))
        out = _run(block, p['after_conv2'], out)
        out = _run(block, p['after_conv3'], out)
    identity = x if block.downsample is None else block.downsample(x)
    # after_block: on the block's output, after the residual sum and its ReLU
    return _run(block, p['after_block'], F.relu(out + identity))


def backbone_reference(net, x, block_plugins=None, stage_plugins=None):
    """The whole backbone.

    ``block_plugins(stage, block)`` gives that block's ``plugins`` mapping;
    ``stage_plugins[stage]`` the names (in ``layer{stage+1}_attn``) applied to its output.
    """
    if net.deep_stem:
        x = net.stem(x)
    else:
        x = F.relu(net.norm1(net.conv1(x)))
    x = net.maxpool(x)
    outs = []
    for i in range(net.num_stages):
        for j, block in enumerate(getattr(net, f'layer{i + 1}')):
            x = block_reference(block, x, block_plugins(i, j) if block_plugins else None)
        for name in (stage_plugins or {}).get(i, ()):
            x = getattr(getattr(net, f'layer{i + 1}_attn'), name)(x)
        if i in net.out_indices:
            outs.append(x)
    return outs


class _TVBottleneck(nn.Module):
    """torchvision's ResNet-50 block layout (v1.5: the stride on the 3x3 conv), written out."""

    def __init__(self, inplanes, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = None
        if stride != 1 or inplanes != planes * 4:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes * 4, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * 4))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class TorchvisionLayoutResNet50(nn.Module):
    """ImageNet ResNet-50 with torchvision's layer names (``torchvision.models.resnet50``)."""

    def __init__(self, num_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = 64
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3))):
            layer = []
            for j in range(blocks):
                layer.append(_TVBottleneck(inplanes, planes, 2 if i > 0 and j == 0 else 1))
                inplanes = planes * 4
            setattr(self, f'layer{i + 1}', nn.Sequential(*layer))
        self.fc = nn.Linear(2048, num_classes)

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        for i in range(1, 5):
            x = getattr(self, f'layer{i}')(x)
        return self.fc(x.mean(dim=(2, 3)))

"""Plain float64 building blocks for the spatial family's reference computations.

They take the modules' parameter tensors, never the modules' own forward code.
"""
import torch
import torch.nn.functional as F


def bn_eval(x, bn):
    """Batch norm in evaluation mode over dim 1 of a tensor of any rank >= 2."""
    shape = [1, -1] + [1] * (x.dim() - 2)
    mean, var = bn.running_mean.view(shape), bn.running_var.view(shape)
    return (x - mean) / torch.sqrt(var + bn.eps) * bn.weight.view(shape) + bn.bias.view(shape)


def zpool_gate(plane, conv_weight, bn):
    """A Z-pool gate on a (N, A, P, Q) tensor: pool over A, 2->1 conv on the P x Q plane.

    Returns the gate, shape (N, P, Q).
    """
    pooled = torch.stack([plane.max(dim=1).values, plane.mean(dim=1)], dim=1)
    k = conv_weight.shape[-1]
    logits = F.conv2d(pooled, conv_weight, padding=k // 2)
    return torch.sigmoid(bn_eval(logits, bn))[:, 0]


def grouped_conv(x, weight, groups, padding, dilation):
    """A grouped convolution written as one ordinary convolution per group."""
    cin, cout = x.shape[1] // groups, weight.shape[0] // groups
    return torch.cat([
        F.conv2d(x[:, g * cin:(g + 1) * cin], weight[g * cout:(g + 1) * cout],
                 padding=padding, dilation=dilation) for g in range(groups)
    ], dim=1)

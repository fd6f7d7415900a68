"""Adaptive average pooling that exports to ONNX for any input size, and ANN's pyramid pooling.

PyTorch's TorchScript ONNX exporter exports adaptive pooling only when the input size is a
multiple of the output size, which a detector's or segmentor's feature maps rarely are (ANN's
pyramid bins 3, 6 and 8, FcaNet's 7x7 DCT basis, RGA's relation grid). During ONNX export
:func:`adaptive_avg_pool2d` writes the same bins as two small averaging matrices, one per axis
(:func:`pool_matrix`); everywhere else, other traces included (FLOP counts,
``torch.jit.trace``), it is ``F.adaptive_avg_pool2d``, so that they see what the model runs.
"""
import torch
import torch.nn.functional as F

__all__ = ['adaptive_avg_pool2d', 'pool_matrix', 'pyramid_pool']


def adaptive_avg_pool2d(x: torch.Tensor, output_size) -> torch.Tensor:
    """``F.adaptive_avg_pool2d(x, output_size)``, also exportable to ONNX for any input size.

    An output size equal to the input's is the identity and returns ``x`` itself.
    """
    oh, ow = (output_size, output_size) if isinstance(output_size, int) else output_size
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if (h, w) == (oh, ow):
        return x
    if not torch.onnx.is_in_onnx_export() or (h % oh == 0 and w % ow == 0):
        return F.adaptive_avg_pool2d(x, (oh, ow))
    ph = pool_matrix(h, oh, x)
    pw = pool_matrix(w, ow, x)
    return torch.matmul(torch.matmul(ph, x), pw.t())


def pool_matrix(in_size: int, out_size: int, like: torch.Tensor) -> torch.Tensor:
    """The (out_size, in_size) matrix of ``adaptive_avg_pool1d``: bin i averages the inputs
    ``floor(i * in / out) <= j < ceil((i + 1) * in / out)``, PyTorch's bins; of ``like``'s
    dtype and device."""
    i = torch.arange(out_size, device=like.device)
    start = torch.div(i * in_size, out_size, rounding_mode='floor')
    end = torch.div((i + 1) * in_size + out_size - 1, out_size, rounding_mode='floor')
    j = torch.arange(in_size, device=like.device)
    mask = (j[None, :] >= start[:, None]) & (j[None, :] < end[:, None])
    return mask.to(like.dtype) / (end - start)[:, None].to(like.dtype)


def pyramid_pool(x: torch.Tensor, sizes) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, sum of s*s): ANN's pyramid-pooled anchors (110 for bins 1, 3, 6,
    8), each level average-pooled adaptively to s x s and flattened row by row."""
    return torch.cat([adaptive_avg_pool2d(x, (s, s)).flatten(2) for s in sizes], dim=2)

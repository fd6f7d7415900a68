"""Plain float64 pieces for the channel-attention references, written without the modules."""
import torch


def bn_eval(z, bn):
    """Batch norm with running statistics, over dim 1, written out."""
    shape = (1, -1) + (1, ) * (z.dim() - 2)
    mean, var = bn.running_mean.view(shape), bn.running_var.view(shape)
    return (z - mean) / torch.sqrt(var + bn.eps) * bn.weight.view(shape) + bn.bias.view(shape)


def block_mean(x, oh, ow):
    """Average pooling of (N, C, H, W) to (oh, ow) when H, W are multiples of oh, ow."""
    n, c, h, w = x.shape
    return x.reshape(n, c, oh, h // oh, ow, w // ow).mean((3, 5))


def adaptive_bins_mean(x, oh, ow):
    """PyTorch's adaptive average pooling bins, one output cell at a time."""
    n, c, h, w = x.shape
    out = x.new_zeros(n, c, oh, ow)
    for i in range(oh):
        h0, h1 = (i * h) // oh, -(-((i + 1) * h) // oh)
        for j in range(ow):
            w0, w1 = (j * w) // ow, -(-((j + 1) * w) // ow)
            out[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean((2, 3))
    return out

"""tools/analysis/tf32_emulation.py: TF32 rounding, and its effect on ours vs plain."""
import os
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, 'tools', 'analysis'))

import tf32_emulation  # noqa: E402


def test_tf32_keeps_ten_mantissa_bits():
    x = torch.tensor([1 + 2**-10, 1 + 2**-11, 1 + 2**-12, -(1 + 3 * 2**-11), 3.0])
    expected = torch.tensor([1 + 2**-10, 1 + 2**-10, 1.0, -(1 + 2 * 2**-10), 3.0])
    assert torch.equal(tf32_emulation.tf32(x), expected)
    y = torch.randn(1000)
    assert ((tf32_emulation.tf32(y) - y).abs() <= y.abs() * 2**-11).all()
    assert tf32_emulation.tf32(y.double()).dtype == torch.float64  # only float32 is rounded


def test_tf32_convolutions_separate_rga_from_plain():
    """RGA's relation products against plain's relation conv: float32 rounding apart with
    exact convolutions, TF32 rounding apart with TF32 ones."""
    rows = tf32_emulation.run('RGA', (2, 32, 16, 8))
    assert rows['float32'][0] < 1e-5
    assert rows['TF32 convolutions'][0] > 30 * rows['float32'][0]
    assert torch.nn.functional.conv2d is tf32_emulation.conv2d_restored()

"""What ``frozen_stages`` freezes in a backbone with attention modules, against the original."""
from torch.nn.modules.batchnorm import _BatchNorm


def _own(net):
    """Parameters and modules of the ResNet itself: names without an attention module in them
    (the toy plugins are all named ``zgn``; stage plugins live in ``layer{i}_attn``)."""
    def ours(name):
        return 'zgn' not in name and '_attn' not in name
    return ({k: p.requires_grad for k, p in net.named_parameters() if ours(k)},
            {k: m.training for k, m in net.named_modules() if ours(k)})


def check_frozen_stages(net, ref, frozen_stages, freeze_plugins):
    """In training and evaluation mode: the ResNet's own parameters and modules are frozen and
    set to eval exactly as in the original backbone ``ref``; every attention module of a
    frozen stage is frozen too only with ``freeze_plugins``, and otherwise trains."""
    for mode in (True, False, True):
        net.train(mode)
        ref.train(mode)
        assert _own(net) == ({k: p.requires_grad for k, p in ref.named_parameters()},
                             {k: m.training for k, m in ref.named_modules()})
        for i in range(1, net.num_stages + 1):
            frozen = freeze_plugins and i <= frozen_stages
            modules = net.stage_attention_modules(i)
            assert modules, f'stage {i} has no attention module to check'
            for m in modules:
                assert all(p.requires_grad != frozen for p in m.parameters()), (i, m)
                norms = [n for n in m.modules() if isinstance(n, _BatchNorm)]
                assert norms and all(n.training == (mode and not frozen and not ref.norm_eval)
                                     for n in norms), (i, mode)

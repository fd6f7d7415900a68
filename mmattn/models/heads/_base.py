"""What mmattn's decode heads share: input checks that name the config key to fix, and loading
checkpoints written with mmseg's heads.

Each head is a drop-in replacement of an mmseg 1.2.2 head (same constructor arguments, same
outputs for the same weights) built from mmattn's attention modules. Where a module of ours names
a layer differently from mmseg, the head lists the renaming in ``_mmseg_keys``; loading a state
dict (``load_state_dict``, or mmengine's ``load_checkpoint`` of a whole segmentor) renames mmseg's
keys on the way in, so a user who switches ``type='DAHead'`` to ``type='mmattn.AttnDAHead'``
keeps their checkpoints. :meth:`AttnHeadMixin.from_mmseg_state_dict` does the same renaming
outside a load.
"""
from typing import Dict, List, Sequence, Tuple

import torch


def rename_mmseg_keys(state_dict: Dict[str, torch.Tensor], prefix: str,
                      rules: Sequence[Tuple[str, str]]) -> None:
    """Rename, in place, the keys under ``prefix`` that follow mmseg's layout.

    Args:
        state_dict: a (possibly whole-model) state dict; changed in place.
        prefix: where the head sits in it (``'decode_head.'``, ``'decode_head.1.'``, ``''``).
        rules: ``(mmseg's name, ours)`` relative to the head. A name ending with ``'.'`` is a
            prefix (a submodule renamed); any other is one whole key, an mmcv ``Scale``'s 0-d
            ``scale`` that our modules hold as a 1-element ``gamma``.

    A key whose new name is already present is left alone, so that a state dict in our own
    layout, or one holding both, loads as it is (and an mmseg key then shows as unexpected).
    """
    if not rules:
        return
    for key in [k for k in state_dict if k.startswith(prefix)]:
        rel = key[len(prefix):]
        for old, new in rules:
            if old.endswith('.'):
                if not rel.startswith(old):
                    continue
                new_key = prefix + new + rel[len(old):]
            elif rel == old:
                new_key = prefix + new
            else:
                continue
            if new_key not in state_dict:
                value = state_dict.pop(key)
                if not old.endswith('.') and isinstance(value, torch.Tensor) and value.dim() == 0:
                    value = value.reshape(1)
                state_dict[new_key] = value
            break


class AttnHeadMixin:
    """Mixed into a subclass of mmseg's ``BaseDecodeHead`` (placed before it in the bases).

    Class attributes a head sets:

    - ``_mmseg_head``: the mmseg head it replaces (for messages).
    - ``_mmseg_keys``: the state-dict renaming from mmseg's layout (see
      :func:`rename_mmseg_keys`).
    - ``_config_key``: where the head's ``in_channels`` is set in a segmentor config.
    """

    _mmseg_head: str = ''
    _mmseg_keys: Tuple[Tuple[str, str], ...] = ()
    _config_key: str = 'model.decode_head.in_channels'

    # -- checkpoints ------------------------------------------------------------------------
    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        # torch and mmengine both pass each child the keys of this (renamed) dict
        rename_mmseg_keys(state_dict, prefix, self._mmseg_keys)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    @classmethod
    def from_mmseg_state_dict(cls, state_dict: Dict[str, torch.Tensor],
                              prefix: str = '') -> Dict[str, torch.Tensor]:
        """A copy of ``state_dict`` with the keys of mmseg's head under ``prefix`` in ours."""
        out = dict(state_dict)
        rename_mmseg_keys(out, prefix, cls._mmseg_keys)
        return out

    # -- inputs -----------------------------------------------------------------------------
    def _init_inputs(self, in_channels, in_index, input_transform):
        # 'resize_concat' replaces in_channels by its sum; the per-level list is kept for
        # the check at forward
        self._level_channels = (list(in_channels) if isinstance(in_channels, (list, tuple))
                                else [in_channels])
        super()._init_inputs(in_channels, in_index, input_transform)

    def _checked_inputs(self, inputs):
        """``_transform_inputs(inputs)``, after checking the backbone's outputs against the
        head's ``in_channels``."""
        name = type(self).__name__
        if not isinstance(inputs, (list, tuple)):
            raise TypeError(
                f'{name}: expected the list of feature maps a backbone (or neck) returns, got '
                f'{type(inputs).__name__}{_shape(inputs)}; for a single map pass [x] and set '
                f'in_index=0')
        if torch.jit.is_tracing() or torch.compiler.is_compiling():
            return self._transform_inputs(inputs)
        multi = isinstance(self.in_index, (list, tuple))
        indices: List[int] = list(self.in_index) if multi else [self.in_index]
        for i in indices:
            if not -len(inputs) <= i < len(inputs):
                raise IndexError(
                    f'{name}: in_index={self.in_index} selects output {i}, but the backbone '
                    f'returned {len(inputs)} feature maps; set in_index to one of '
                    f'0..{len(inputs) - 1}')
        for i in indices:
            if not isinstance(inputs[i], torch.Tensor) or inputs[i].dim() != 4:
                raise ValueError(f'{name}: feature map {i} must be an (N, C, H, W) tensor, '
                                 f'got {type(inputs[i]).__name__}{_shape(inputs[i])}')
        actual = [inputs[i].shape[1] for i in indices]
        if actual != self._level_channels:
            got = actual if multi else actual[0]
            want = self._level_channels if multi else self._level_channels[0]
            these = 'those outputs have' if multi else 'that output has'
            raise ValueError(
                f'{name}: in_channels={want} (the channels it expects from the backbone '
                f'output{"s" if multi else ""} in_index={self.in_index}), but {these} {got} '
                f'channels. Set `in_channels={got}` in the head\'s config ({self._config_key}), '
                f'or select the backbone output{"s" if multi else ""} with {want} channels '
                f'through `in_index`.')
        return self._transform_inputs(inputs)


def _shape(x) -> str:
    return f' of shape {tuple(x.shape)}' if isinstance(x, torch.Tensor) else ''

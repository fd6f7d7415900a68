"""What a checkpoint is, beyond its tensors: checked before it is converted.

Some networks have exactly the tensors of another that computes something else (timm's
anti-aliased SE nets: an average pool has no tensors), so the keys and shapes cannot tell them
apart. What can is a name: the released file's (``seresnextaa101d_32x8d_ah-83c8ae12.pth``), the
Hugging Face hub repository's (``timm/seresnextaa101d_32x8d.sw_in12k_ft_in1k``, also the
hub cache's ``models--timm--...`` folder), the ``architecture`` of the ``config.json`` the hub
keeps beside the weights, and the ``arch`` of a timm training checkpoint. Every format lists the
names of the networks it converts (``networks``), of look-alikes it must refuse
(``lookalikes``) and of its family's networks our backbones cannot express
(``refused_networks``); a checkpoint named as a look-alike or an inexpressible network is
refused, naming the network, where the name was found and why. A name of another format's
network is only reported: those networks differ in their tensors, which decide.

A checkpoint of another kind is refused too: an OpenMMLab model checkpoint (an mmdet or mmseg
detector or segmentor, an mmpretrain classifier: tensors under ``backbone.``, ``neck.``,
``*_head.``), whose backbone already has our layout, and a file this tool has converted
already. mmpretrain's SE classifiers are the exception: their SE layers are named otherwise
(``se_layer.conv1.conv``), so one given to another format is sent to the formats that read
them (``mmpretrain-se``), and those refuse what is not such a classifier.
"""
import os.path as osp
import re
from collections import Counter
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from .common import ConversionError, ConverterFormat, short_list
from .files import Source, read_json

# an mmpretrain SEResNet / SEResNeXt classifier: the SELayer of a block in its backbone
MMPRETRAIN_SE = re.compile(r'backbone\.layer\d+\.\d+\.se_layer\.')
# the parts of an mmpretrain ImageClassifier (its GlobalAveragePooling neck has no tensors)
CLASSIFIER_PARTS = ('backbone', 'neck', 'head', 'data_preprocessor')
# where an OpenMMLab model keeps its parts
OPENMMLAB_PARTS = ('backbone', 'neck', 'decode_head', 'auxiliary_head', 'rpn_head', 'roi_head',
                   'bbox_head', 'mask_head', 'head', 'data_preprocessor')


def name_table(formats: Mapping[str, ConverterFormat]) -> Dict[str, Tuple[Optional[str], str]]:
    """Network name -> (the format that converts it, or None; why not, where None)."""
    table: Dict[str, Tuple[Optional[str], str]] = {}
    for fmt in formats.values():
        for name in fmt.networks:
            table[name.lower()] = (fmt.name, '')
    for fmt in formats.values():
        for name, why in tuple(fmt.lookalikes) + tuple(fmt.refused_networks):
            table.setdefault(name.lower(), (None, why))
    return table


def names_in(text: str, names: Sequence[str]) -> List[str]:
    """The network names that occur in ``text`` as whole names (not inside a longer name or
    word: ``seresnet50`` is not in ``seresnet50d``), longest first where they overlap."""
    text = text.lower()
    spans = []
    for name in names:
        for m in re.finditer(rf'(?<![a-z0-9]){re.escape(name)}(?![a-z0-9])', text):
            spans.append((m.start(), m.end(), name))
    found = []
    for start, end, name in sorted(spans, key=lambda s: s[0] - s[1]):
        if not any(s <= start and end <= e for s, e, _ in found):
            found.append((start, end, name))
    return [name for _, _, name in sorted(found)]


def _path_names(path: str) -> List[Tuple[str, str]]:
    """(text, where) of a path that can name a network: the file's name, and the folder of a
    Hugging Face hub cache (``models--ORG--NAME``); for the path as given and as resolved (the
    hub cache links each snapshot's files to blobs). Other folders are the user's own naming,
    not the file's."""
    out, seen = [], set()
    for p, how in ((path, ''), (osp.realpath(path), ', resolved')):
        p = osp.abspath(p)
        if osp.basename(p) not in seen:
            seen.add(osp.basename(p))
            out.append((osp.basename(p), f'its file name{how}'))
        for part in p.split(osp.sep):
            hub = re.fullmatch(r'models--[^-]+(?:-[^-]+)*--(.+)', part)
            if hub and part not in seen:
                seen.add(part)
                out.append((hub.group(1), f'its Hugging Face hub folder {part!r}'))
    return out


def evidence(source: Source, names: Sequence[str]) -> List[Tuple[str, str]]:
    """(network name, where it was found) for every name that something about ``source``
    gives: its metadata, a ``config.json`` beside it (the hub's), its file name, its hub
    folder."""
    found: List[Tuple[str, str]] = []
    args = source.extras.get('args')
    for value, where in ((source.extras.get('arch'), 'the checkpoint\'s arch'),
                         (getattr(args, 'model', None), 'the checkpoint\'s args.model'),
                         (source.extras.get('architecture'), 'its metadata\'s architecture')):
        if isinstance(value, str):
            found += [(n, where) for n in names_in(value, names)]
    config = read_json(osp.join(osp.dirname(osp.abspath(source.path)), 'config.json'))
    if config and isinstance(config.get('architecture'), str):
        found += [(n, 'the architecture in config.json beside it')
                  for n in names_in(config['architecture'], names)]
    for text, where in _path_names(source.path):
        found += [(n, where) for n in names_in(text, names)]
    out = []
    for item in found:
        if item not in out:
            out.append(item)
    return out


def check_network(fmt: ConverterFormat, source: Source,
                  formats: Mapping[str, ConverterFormat]) -> List[str]:
    """Refuse a checkpoint whose name or metadata names a look-alike of ``fmt``'s networks or a
    network our backbones cannot express; returns notes for the report (the names found, or
    what the user must check where ``fmt`` has look-alikes and nothing names the network).

    A name of another format's network is only noted: such networks differ in their tensors,
    which decide (a file may be named loosely)."""
    table = name_table(formats)
    found = evidence(source, sorted(table, key=len, reverse=True))
    notes = []
    for name, where in found:
        owner, why = table[name]
        if owner is None:
            raise ConversionError(f'{fmt.name}: {source.path} is {name} ({where}): not '
                                  f'convertible: {why}')
        notes.append(f'{source.path} is {name} ({where})' + (
            '' if owner == fmt.name else f', a network of format {owner!r}'))
    if not found and fmt.lookalikes:
        notes.append(
            f'nothing in {source.path} (its name, its metadata, a config.json beside it) names '
            f'its network: check that it is not {" or ".join(n for n, _ in fmt.lookalikes)}, '
            f'which has the same tensors and computes another network')
    return notes


def check_kind(fmt: ConverterFormat, source: Source) -> None:
    """Refuse a file this tool wrote, and an OpenMMLab model checkpoint given to a format that
    reads ImageNet classifiers."""
    meta = source.extras.get('meta')
    converter = meta.get('converter') if isinstance(meta, Mapping) else None
    if isinstance(converter, str) and 'model_converters/convert.py' in converter:
        raise ConversionError(
            f'{source.path}: already converted ({converter}, from {meta.get("source")}): it '
            f'loads as it is, with init_cfg=dict(type=\'Pretrained\', '
            f'checkpoint={source.path!r})')
    tops = Counter(k.split('.', 1)[0] for k in source.state)
    parts = [p for p in OPENMMLAB_PARTS if p in tops]
    mmpretrain_se = any(MMPRETRAIN_SE.match(k) for k in source.state)
    if fmt.layer_prefix.startswith('backbone.'):
        if fmt.name.startswith('mmpretrain'):
            _check_mmpretrain_classifier(fmt, source, tops, parts, mmpretrain_se)
        return  # a format that reads detector checkpoints
    if mmpretrain_se:
        raise ConversionError(
            f'{source.path}: this is an mmpretrain SE classifier checkpoint (SEResNet / '
            f'SEResNeXt: SE layers under backbone.layer*.*.se_layer., head under head.), not '
            f'{fmt.name}\'s layout: python tools/model_converters/convert.py mmpretrain-se '
            f'(SE-ResNet) or mmpretrain-se-x32x4d (SE-ResNeXt) {source.path} DST')
    if tops.get('backbone', 0) and not any(k.startswith(fmt.layer_prefix.format(1))
                                           for k in source.state):
        kind = ('a segmentor' if 'decode_head' in tops else
                'a detector' if any(p.endswith(('rpn_head', 'roi_head', 'bbox_head'))
                                    for p in parts) else
                'an OpenMMLab model')
        others = [f'{p}. ({tops[p]})' for p in parts if p != 'backbone']
        raise ConversionError(
            f'{source.path}: this is {kind} checkpoint (mmdet/mmseg/mmpretrain layout: '
            f'{tops["backbone"]} tensors under backbone.'
            + (f', others under {short_list(others, 4)}' if others else '')
            + f'), not an ImageNet classifier in {fmt.name}\'s layout: its backbone has our '
            f'layout already; load it with init_cfg=dict(type=\'Pretrained\', '
            f'checkpoint={source.path!r}, prefix=\'backbone.\'), or write it alone with '
            f'python tools/model_converters/extract_backbone.py {source.path} DST')


def _check_mmpretrain_classifier(fmt: ConverterFormat, source: Source, tops: Counter,
                                 parts: List[str], se: bool) -> None:
    """Refuse, for an ``mmpretrain-*`` format, what is not an mmpretrain SE classifier: a
    detector or segmentor checkpoint, a classifier without SE layers (its backbone loads as it
    is), a bare backbone."""
    others = [f'{p}. ({tops[p]})' for p in parts if p not in CLASSIFIER_PARTS]
    if others:
        kind = 'a segmentor' if 'decode_head' in tops else 'a detector'
        raise ConversionError(
            f'{source.path}: this is {kind} checkpoint (tensors under backbone. and '
            f'{short_list(others, 4)}), not an mmpretrain classifier: {fmt.name} reads '
            f'mmpretrain SEResNet / SEResNeXt classifiers (backbone. and head.)')
    if not tops.get('backbone', 0):
        raise ConversionError(
            f'{source.path}: no tensors under backbone.: {fmt.name} reads mmpretrain '
            f'classifier checkpoints (backbone. and head. keys, as mmpretrain saves them)')
    if not se:
        raise ConversionError(
            f'{source.path}: an mmpretrain classifier without SE layers (no '
            f'backbone.layer*.*.se_layer. tensors): a ResNet\'s backbone has our layout '
            f'already; load it with init_cfg=dict(type=\'Pretrained\', '
            f'checkpoint={source.path!r}, prefix=\'backbone.\')')

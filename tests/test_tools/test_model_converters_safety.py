"""convert.py cannot be misused: every refusal is one line naming the file or the format and
what is wrong, with exit status 1 and nothing written.

- File problems (``files.py``): a missing, empty, truncated, text, random, pickled-object or
  unreadable source; ``.safetensors`` read through the ``safetensors`` package or refused by
  name; never torch's advice to load with ``weights_only=False``.
- The destination: never the source (same path, hard or symbolic link), an existing file only
  with ``--force``, never a directory; written to a temporary file and renamed, so a write that
  fails (a real file-size limit on a real process here) leaves no partial file.
- Checkpoints of another kind or network (``identify.py``): a detector or segmentor checkpoint,
  a file converted already, timm's anti-aliased SE nets (exactly the tensors of the plain ones:
  refused where a name tells), and a look-alike given to the wrong format (the error names the
  right one).
"""
import argparse
import importlib
import io
import json
import os
import os.path as osp
import pickle
import struct
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout

import pytest
import torch

from tests.helpers import randomize_, requires_mmdet
from tests.test_tools import converter_sources_more as S

pytestmark = requires_mmdet

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'model_converters', 'convert.py')
BASE = 16
NARROW = dict(base_channels=BASE)


def _tool():
    if osp.join(ROOT, 'tools') not in sys.path:
        sys.path.insert(0, osp.join(ROOT, 'tools'))
    return importlib.import_module('model_converters.convert')


def _ref():
    """The timm / Cadene SE networks of test_model_converters.py."""
    return importlib.import_module('tests.test_tools.test_model_converters')


class Opaque:
    """Any Python object that is not a tensor or a plain container."""


def cbam_state(depth=18, base=BASE):
    net = S.SourceResNet(depth, base, 'cbam', lambda i, c: S.CBAMSource(c))
    return randomize_(net, seed=1).state_dict()


def main(*args):
    """(exit status, stdout, stderr) of ``convert.py ARGS`` run in this process."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = _tool().main([str(a) for a in args])
    return rc, out.getvalue(), err.getvalue()


def assert_one_line(err, *words):
    lines = err.strip().split('\n')
    assert len(lines) == 1 and lines[0].startswith('error: '), err
    for w in words:
        assert str(w) in lines[0], (w, lines[0])
    assert 'Traceback' not in err and 'weights_only' not in err, err


def files_in(folder):
    return sorted(os.listdir(folder))


# ------------------------------------------------------------------------------ source files

def _save(path, obj, **kwargs):
    torch.save(obj, path, **kwargs)
    return path


def _cut(path, obj, **kwargs):
    torch.save(obj, path, **kwargs)
    data = open(path, 'rb').read()
    open(path, 'wb').write(data[:len(data) // 2])
    return path


def _write(path, data):
    open(path, 'wb').write(data)
    return path


def _safetensors_bytes():
    """A small valid safetensors file, written by hand (no package needed)."""
    header = json.dumps({'conv1.weight': {'dtype': 'F32', 'shape': [2],
                                          'data_offsets': [0, 8]}}).encode()
    return struct.pack('<Q', len(header)) + header + struct.pack('<2f', 1.0, 2.0)


BAD_SOURCES = {
    'missing': (lambda p: p, 'no such file'),
    'empty': (lambda p: _write(p, b''), 'empty (0 bytes)'),
    'truncated': (lambda p: _cut(p, cbam_state()), 'truncated: a zip archive'),
    'truncated-legacy': (lambda p: _cut(p, cbam_state(), _use_new_zipfile_serialization=False),
                         'truncated: the data ends early'),
    'text': (lambda p: _write(p, b'epoch 3, top-1 77.6\nsaved by hand\n'), 'a text file'),
    'html': (lambda p: _write(p, b'<!DOCTYPE html>\n<html><body>404</body></html>'),
             'an HTML page'),
    'lfs-pointer': (lambda p: _write(p, b'version https://git-lfs.github.com/spec/v1\n'
                                        b'oid sha256:0123\nsize 97\n'), 'a Git LFS pointer'),
    'random': (lambda p: _write(p, bytes(range(7, 256)) * 16), 'not a PyTorch checkpoint'),
    'plain-pickle': (lambda p: _write(p, pickle.dumps({'conv1.weight': [1.0]})),
                     'a plain Python pickle'),
    'pickled-object': (lambda p: _save(p, {'state_dict': cbam_state(), 'extra': Opaque()}),
                       f'holds a pickled Python object ({__name__}.Opaque)'),
    'whole-model': (lambda p: _save(p, S.SourceResNet(18, BASE)),
                    'holds a pickled Python object (tests.test_tools.converter_sources_more.'
                    'SourceResNet), which is not loaded'),
    'list': (lambda p: _save(p, [torch.zeros(1)]), 'holds a list, not a state dict'),
    'no-state-dict': (lambda p: _save(p, {'epoch': 3, 'net': cbam_state()}),
                      "no 'state_dict' or 'model' entry, and state dicts under 'net'"),
    'non-tensors': (lambda p: _save(p, dict(cbam_state(), lr=0.1)),
                    'entries that are not tensors: lr'),
    'directory': (lambda p: os.makedirs(p) or p, 'a directory, not a checkpoint file'),
    'dangling-link': (lambda p: os.symlink(p + '.gone', p) or p, 'a symbolic link to'),
    'truncated-safetensors': (lambda p: _write(p, _safetensors_bytes()[:-5]),
                              'truncated safetensors file'),
}


@pytest.mark.parametrize('case', list(BAD_SOURCES))
def test_file_problems_are_one_line(case, tmp_path):
    make, words = BAD_SOURCES[case]
    if case == 'truncated-safetensors':
        pytest.importorskip('safetensors')
    src = str(tmp_path / (case + ('.safetensors' if 'safetensors' in case else '.pth')))
    make(src)
    dst = tmp_path / 'out' / 'converted.pth'
    rc, out, err = main('cbam', src, dst)
    assert rc == 1 and not out
    assert_one_line(err, src + ':', words)
    assert not dst.exists() and not (tmp_path / 'out').exists()


@pytest.mark.parametrize('case', ['truncated', 'random', 'pickled-object'])
def test_file_problems_end_the_process_with_one_line(case, tmp_path):
    """The command as a user runs it: exit status 1, one line on stderr, no traceback."""
    src = str(tmp_path / f'{case}.pth')
    BAD_SOURCES[case][0](src)
    proc = subprocess.run([sys.executable, TOOL, 'cbam', src, str(tmp_path / 'dst.pth')],
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 1 and not proc.stdout, proc
    assert_one_line(proc.stderr, src, BAD_SOURCES[case][1])
    assert files_in(tmp_path) == [f'{case}.pth']


def test_safetensors_without_the_package_is_refused_by_name(tmp_path, monkeypatch):
    src = _write(str(tmp_path / 'model.safetensors'), _safetensors_bytes())
    monkeypatch.setitem(sys.modules, 'safetensors', None)  # import safetensors fails
    rc, _, err = main('cbam', src, tmp_path / 'dst.pth')
    assert rc == 1
    assert_one_line(err, src, 'needs the safetensors package', 'pip install safetensors')


def test_safetensors_converts_as_the_pth_does(tmp_path):
    pytest.importorskip('safetensors')
    from safetensors.torch import save_file
    state = cbam_state(depth=50)
    torch.save({'state_dict': state}, tmp_path / 'cbam.pth')
    # the hub's model.safetensors: the state dict itself, contiguous tensors; the hub cache
    # stores it as a blob named by its hash, which is read by its content
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / 'model.safetensors'))
    os.link(tmp_path / 'model.safetensors', tmp_path / '9a1e7c')
    tool = _tool()
    with redirect_stdout(io.StringIO()):
        for name in ('cbam.pth', 'model.safetensors', '9a1e7c'):
            tool.convert('cbam', str(tmp_path / name), str(tmp_path / f'{name}.out'),
                         overrides=NARROW)
    a = torch.load(tmp_path / 'cbam.pth.out', weights_only=True)['state_dict']
    for name in ('model.safetensors', '9a1e7c'):
        b = torch.load(tmp_path / f'{name}.out', weights_only=True)['state_dict']
        assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------------------ destination

@pytest.mark.parametrize('how', ['same-path', 'hard-link', 'symbolic-link', 'linked-source'])
@pytest.mark.parametrize('force', [False, True])
def test_destination_is_never_the_source(how, force, tmp_path):
    src = str(tmp_path / 'released.pth')
    torch.save({'state_dict': cbam_state()}, src)
    before = open(src, 'rb').read()
    dst = src
    if how == 'hard-link':
        dst = str(tmp_path / 'hard.pth')
        os.link(src, dst)
    elif how == 'symbolic-link':
        dst = str(tmp_path / 'link.pth')
        os.symlink(src, dst)
    elif how == 'linked-source':
        dst, src = src, str(tmp_path / 'link.pth')
        os.symlink(dst, src)
    rc, _, err = main('cbam', src, dst, *(['--force'] if force else []))
    assert rc == 1
    assert_one_line(err, dst, 'is the source checkpoint', 'refusing to overwrite')
    assert open(tmp_path / 'released.pth', 'rb').read() == before


def test_existing_destination_needs_force(tmp_path):
    src, dst = str(tmp_path / 'released.pth'), str(tmp_path / 'converted.pth')
    torch.save({'state_dict': cbam_state(depth=50)}, src)
    _write(dst, b'an earlier conversion')
    rc, _, err = main('cbam', src, dst)
    assert rc == 1
    assert_one_line(err, dst, 'exists', '--force')
    assert open(dst, 'rb').read() == b'an earlier conversion'
    with redirect_stdout(io.StringIO()):
        _tool().convert('cbam', src, dst, overrides=NARROW, force=True)
    assert 'layer1.0.cbam.fc1.weight' in torch.load(dst, weights_only=True)['state_dict']
    # written to a temporary file beside DST, then renamed: nothing else is left there, and the
    # file has a new file's usual mode
    assert files_in(tmp_path) == ['converted.pth', 'released.pth']
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(dst).st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize('case', ['directory', 'under-a-file'])
def test_destination_that_cannot_be_a_file(case, tmp_path):
    src = str(tmp_path / 'released.pth')
    torch.save({'state_dict': cbam_state()}, src)
    if case == 'directory':
        dst = str(tmp_path / 'out')
        os.makedirs(dst)
        words = ('a directory', 'give the path of the file')
    else:
        _write(str(tmp_path / 'notes'), b'')
        dst = str(tmp_path / 'notes' / 'cbam.pth')
        words = ('cannot be created', 'is a file, not a directory')
    rc, _, err = main('cbam', src, dst)
    assert rc == 1
    assert_one_line(err, dst, *words)


# convert.py in a process whose writes fail past 1 MiB (EFBIG, as a full disk fails with
# ENOSPC); Python ignores SIGXFSZ, so write() returns the error
LIMITED = ('import resource, runpy, sys; '
           'resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20)); '
           'sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name="__main__")')


@pytest.mark.parametrize('existing', [False, True])
def test_failed_write_leaves_no_partial_file(existing, tmp_path):
    """A real process whose writes fail past 1 MiB converts a full-width CBAM-ResNet-18 (47 MB
    to write): exit status 1, one line, DST absent or as it was, no temporary file left."""
    net = S.SourceResNet(18, 64, 'cbam', lambda i, c: S.CBAMSource(c), num_classes=1000)
    src, dst = str(tmp_path / 'released.pth'), str(tmp_path / 'converted.pth')
    torch.save({'state_dict': net.state_dict()}, src)
    if existing:
        _write(dst, b'an earlier conversion')
    proc = subprocess.run(
        [sys.executable, '-c', LIMITED, TOOL, 'cbam', src, dst]
        + (['--force'] if existing else []),
        capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 1, proc
    assert_one_line(proc.stderr, dst, 'writing failed', 'no file was written')
    if existing:
        assert 'the existing file is unchanged' in proc.stderr
        assert open(dst, 'rb').read() == b'an earlier conversion'
        assert files_in(tmp_path) == ['converted.pth', 'released.pth']
    else:
        assert files_in(tmp_path) == ['released.pth']


# ------------------------------------------------------------------------ checkpoint kinds

def _detector(state, heads):
    det = {f'backbone.{k}': v for k, v in state.items() if not k.startswith('fc.')}
    for head in heads:
        det[f'{head}.conv.weight'] = torch.zeros(4, 4, 1, 1)
    return {'meta': {'mmengine_version': '0.10.7', 'epoch': 12}, 'state_dict': det}


@pytest.mark.parametrize('heads,kind', [
    (('neck.lateral_convs.0', 'rpn_head', 'roi_head.bbox_head'), 'a detector checkpoint'),
    (('decode_head', 'auxiliary_head'), 'a segmentor checkpoint'),
])
def test_detector_checkpoint_is_named_as_such(heads, kind, tmp_path):
    src = str(tmp_path / 'epoch_12.pth')
    torch.save(_detector(cbam_state(depth=50), heads), src)
    rc, _, err = main('cbam', src, tmp_path / 'dst.pth')
    assert rc == 1
    assert_one_line(err, src, kind, 'backbone.', "prefix='backbone.'", 'extract_backbone.py')
    assert 'blocks per stage' not in err


def test_converted_file_is_not_converted_again(tmp_path):
    src, dst = str(tmp_path / 'released.pth'), str(tmp_path / 'converted.pth')
    torch.save({'state_dict': cbam_state(depth=50)}, src)
    with redirect_stdout(io.StringIO()):
        _tool().convert('cbam', src, dst, overrides=NARROW)
    rc, _, err = main('cbam', dst, tmp_path / 'again.pth')
    assert rc == 1
    assert_one_line(err, dst, 'already converted', "type='Pretrained'")


@pytest.mark.parametrize('given,source,right', [
    ('cbam', 'bam', 'bam'),
    ('bam', 'cbam', 'cbam'),
    ('sge', 'eca', 'eca'),
    ('cadene-se', 'timm-se', 'timm-se'),
])
def test_look_alike_in_the_wrong_format_names_the_right_one(given, source, right, tmp_path):
    if source == 'bam':
        net = S.SourceResNet(50, BASE, stage_attn=lambda i, c: S.BAMSource(c))
    elif source == 'cbam':
        net = S.SourceResNet(50, BASE, 'cbam', lambda i, c: S.CBAMSource(c))
    elif source == 'eca':
        ks = (3, 5, 5, 7)
        net = S.SourceResNet(50, BASE, 'eca', lambda i, c: S.ECASource(ks[i]))
    else:
        net = _ref().make_source(_ref().CASES['timm-se-r50'][2])
    src = str(tmp_path / 'released.pth')
    torch.save({'state_dict': net.state_dict()}, src)
    # the command line (full-width configs: the narrow file maps by name) ...
    rc, _, err = main(given, src, tmp_path / 'dst.pth')
    assert rc == 1
    assert_one_line(err, f"{given}: {src} is in the layout of format {right!r}",
                    f'convert.py {right} {src}')
    # ... and with the file's widths, where it converts exactly: that format first
    with pytest.raises(_tool().ConversionError, match=f"layout of format {right!r}"):
        _tool().convert(given, src, str(tmp_path / 'dst.pth'), overrides=NARROW)
    assert not (tmp_path / 'dst.pth').exists()


# ---------------------------------------------------------------- timm's anti-aliased nets

AA_CASES = {
    # format case of test_model_converters.py, anti-aliased name, plain name
    'seresnetaa50d': ('timm-se-d-r50', 'seresnetaa50d', 'seresnet152d'),
    'seresnextaa101d_32x8d': ('timm-se-xd-50', 'seresnextaa101d_32x8d', 'seresnext101d_32x8d'),
}


@pytest.mark.parametrize('aa', list(AA_CASES))
def test_anti_aliased_nets_have_the_plain_tensors_and_compute_another_network(aa):
    """Why a name must decide: timm's aa nets (aa_layer=AvgPool2d) have exactly the keys,
    shapes and key order of the plain nets, and the same weights compute another network."""
    ref = _ref()
    case = AA_CASES[aa][0]
    spec = ref.CASES[case][2]
    plain = ref.make_source(spec)
    anti = ref.RefSENet(**spec, aa=True).double()
    assert [(k, v.shape) for k, v in anti.state_dict().items()] == \
        [(k, v.shape) for k, v in plain.state_dict().items()]
    anti.load_state_dict(plain.state_dict())
    x = torch.randn(1, 3, 64, 64, dtype=torch.float64)
    plain.eval()
    anti.eval()
    with torch.no_grad():
        for a, p in zip(anti(x), plain(x)):
            # the same shapes, and differences far beyond rounding
            assert a.shape == p.shape and (a - p).abs().max() > 1e-3 * p.abs().max()


def _aa_file(tmp_path, where, name, state):
    """Save ``state`` as a file that ``name``s its network the way ``where`` does."""
    if where == 'file-name':
        path = tmp_path / f'{name}_ah-83c8ae12.pth'
        torch.save(state, path)
    elif where == 'hub-cache':
        # huggingface_hub's cache: snapshots/REV/FILE links to blobs/SHA
        repo = tmp_path / 'hub' / f'models--timm--{name}.sw_in12k_ft_in1k'
        (repo / 'blobs').mkdir(parents=True)
        (repo / 'snapshots' / '0f3c').mkdir(parents=True)
        torch.save(state, repo / 'blobs' / '9a1e')
        path = repo / 'snapshots' / '0f3c' / 'pytorch_model.bin'
        os.symlink(osp.join('..', '..', 'blobs', '9a1e'), path)
    elif where == 'config-json':
        # a hub download into a folder of the user's naming: config.json names the network
        (tmp_path / 'weights').mkdir()
        path = tmp_path / 'weights' / 'pytorch_model.bin'
        torch.save(state, path)
        (tmp_path / 'weights' / 'config.json').write_text(json.dumps(
            {'architecture': name, 'num_classes': 1000,
             'pretrained_cfg': {'tag': 'sw_in12k_ft_in1k'}}))
    elif where == 'train-checkpoint':
        # timm's train.py: the model name in 'arch' and in the argparse options
        path = tmp_path / 'model_best.pth.tar'
        torch.save({'epoch': 299, 'arch': name, 'state_dict': state,
                    'args': argparse.Namespace(model=name, lr=0.6, drop_path=0.05),
                    'metric': 83.1}, path)
    return str(path)


WHERE = {'file-name': 'its file name', 'hub-cache': 'its Hugging Face hub folder',
         'config-json': 'the architecture in config.json beside it',
         'train-checkpoint': "the checkpoint's arch"}


@pytest.mark.parametrize('where', list(WHERE))
@pytest.mark.parametrize('aa', list(AA_CASES))
def test_anti_aliased_checkpoint_is_refused_where_a_name_says_so(aa, where, tmp_path):
    ref = _ref()
    case, name, _ = AA_CASES[aa]
    fmt, _, spec, overrides = ref.CASES[case]
    state = ref.source_state(ref.RefSENet(**spec, aa=True).double())
    src = _aa_file(tmp_path, where, name, state)
    dst = tmp_path / 'converted.pth'
    with pytest.raises(_tool().ConversionError) as info:
        _tool().convert(fmt, src, str(dst), overrides=overrides)
    msg = str(info.value)
    assert msg.startswith(f'{fmt}: {src} is {name} ({WHERE[where]}')
    assert 'anti-aliased' in msg and 'not convertible' in msg
    assert 'only its name tells them apart' in msg
    assert not dst.exists()
    rc, _, err = main(fmt, src, dst)
    assert rc == 1
    assert_one_line(err, name, 'anti-aliased')


def test_plain_net_converts_and_an_unnamed_file_says_what_to_check(tmp_path, capsys):
    ref = _ref()
    fmt, _, spec, overrides = ref.CASES['timm-se-xd-50']
    state = ref.source_state(ref.make_source(spec))
    named = str(tmp_path / 'seresnext101d_32x8d_ah-191d7b94.pth')
    unnamed = str(tmp_path / 'weights.pth')
    for path in (named, unnamed):
        torch.save(state, path)
    tool = _tool()
    tool.convert(fmt, named, str(tmp_path / 'a.pth'), overrides=overrides)
    out = ' '.join(capsys.readouterr().out.split())
    assert f'note: {named} is seresnext101d_32x8d (its file name)' in out
    assert 'check that it is not' not in out
    tool.convert(fmt, unnamed, str(tmp_path / 'b.pth'), overrides=overrides)
    out = ' '.join(capsys.readouterr().out.split())
    assert (f'note: nothing in {unnamed} (its name, its metadata, a config.json beside it) '
            f'names its network: check that it is not seresnextaa101d_32x8d') in out
    a = torch.load(tmp_path / 'a.pth', weights_only=True)['state_dict']
    b = torch.load(tmp_path / 'b.pth', weights_only=True)['state_dict']
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_list_says_where_nothing_can_tell(capsys):
    assert _tool().main(['--list']) == 0
    out = capsys.readouterr().out
    sections = {}
    for line in out.split('\n'):
        if line and not line.startswith(' '):
            current = sections.setdefault(line.split(':', 1)[0], [])
        current.append(line)
    for fmt, aa in (('timm-se-d', 'seresnetaa50d'), ('timm-se-xd-32x8d',
                                                     'seresnextaa101d_32x8d')):
        text = '\n'.join(sections[fmt])
        assert f'same tensors, another network: {aa}, timm\'s anti-aliased net' in text
        assert 'nothing in the tensors tells them apart' in text
        assert f'check yourself that it is not {aa}' in text
    assert 'seresnextaa201d_32x8d' in '\n'.join(sections['timm-se'])


def test_names_are_matched_whole():
    from tools.model_converters.identify import names_in
    names = ['seresnet50', 'seresnet152d', 'seresnextaa101d_32x8d', 'seresnext101d_32x8d',
             'legacy_seresnet50', 'se_resnet50']
    assert names_in('seresnet152d_ra2-04464dd2.pth', names) == ['seresnet152d']
    assert names_in('seresnet50d.pth', names) == []
    assert names_in('legacy_seresnet50.in1k', names) == ['legacy_seresnet50']
    assert names_in('models--timm--seresnextaa101d_32x8d.sw_in12k', names) == \
        ['seresnextaa101d_32x8d']
    assert names_in('Se_ResNet50-ce0d4300.pth', names) == ['se_resnet50']
    assert names_in('my_seresnext101d_32x8d_ft.pth', names) == ['seresnext101d_32x8d']


def test_extract_backbone_reads_and_writes_as_safely(tmp_path):
    from tests.helpers import load_tool
    tool = load_tool('model_converters', 'extract_backbone.py')
    src = str(tmp_path / 'epoch_12.pth')
    _cut(src, _detector(cbam_state(), ('neck', )))
    with pytest.raises(SystemExit, match=r'^error: .*epoch_12\.pth: truncated'):
        tool.main([src, str(tmp_path / 'backbone.pth')])
    torch.save(_detector(cbam_state(), ('neck', )), src)
    before = open(src, 'rb').read()
    with pytest.raises(SystemExit, match='is the source checkpoint'):
        tool.main([src, src])
    assert open(src, 'rb').read() == before
    with redirect_stdout(io.StringIO()):
        tool.main([src, str(tmp_path / 'backbone.pth')])
    assert files_in(tmp_path) == ['backbone.pth', 'epoch_12.pth']

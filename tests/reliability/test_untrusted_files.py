"""Untrusted files never run code: checkpoints, ``.bin`` pair sets, ``.npz``/``.npy`` arrays.

1. A static scan (``ast``, no import) of ``coupleface/`` and ``tools/``: every call that can
   unpickle (``torch.load``, ``pickle.load(s)``, ``pickle.Unpickler``, ``np.load`` with
   ``allow_pickle=True``, ``mmengine.load``, ``joblib``/``dill``/``pandas.read_pickle``, ...)
   must be one of the reviewed locations below, so nothing bypasses
   ``coupleface.utils.checkpoint_load.safe_torch_load`` or the restricted ``.bin`` unpickler.
2. Malicious files, through the same entry points a user takes (``tools/train.py --resume``,
   MMEngine's checkpoint loader, teacher loading, ``VerificationBinDataset``, relations and
   teacher bank files), are refused and their payload never runs (no marker file appears).
"""
import ast
import os
import os.path as osp
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from coupleface.datasets.bin_io import BinFormatError, UnsafeFileError, read_bin
from coupleface.mining import load_relations
from coupleface.models.distillers.teacher_bank import TeacherBank
from coupleface.utils.checkpoint_load import UnsafeCheckpointError
from coupleface.utils.checkpoint_state_dict import load_state_dict_flexible

ROOT = Path(__file__).resolve().parents[2]

#: (file, enclosing function or class, call) -> why it is safe. Anything else fails the scan.
REVIEWED = {
    ('coupleface/utils/checkpoint_load.py', 'safe_torch_load', 'torch.load'):
        'the safe loader itself: weights_only=True with the SAFE_GLOBALS allow-list',
    ('coupleface/datasets/bin_io.py', '_RestrictedUnpickler', 'pickle.Unpickler'):
        'the restricted .bin unpickler: find_class resolves an allow-list only',
    ('coupleface/datasets/verification_bin.py', 'get_data_info', 'pickle.loads'):
        "MMEngine's serialize_data: bytes this process pickled itself, never a file",
}

#: Calls that unpickle, by dotted name (module aliases resolved from the file's imports).
UNPICKLING = {
    'torch.load', 'torch.serialization.load', 'torch.jit.load', 'torch.package.PackageImporter',
    'torch.hub.load', 'torch.hub.load_state_dict_from_url',
    'pickle.load', 'pickle.loads', 'pickle.Unpickler', '_pickle.load', '_pickle.loads',
    '_pickle.Unpickler', 'cPickle.load', 'cPickle.loads', 'dill.load', 'dill.loads',
    'cloudpickle.load', 'cloudpickle.loads', 'joblib.load', 'pandas.read_pickle',
    'shelve.open', 'marshal.load', 'marshal.loads', 'mmengine.load', 'mmengine.fileio.load',
    'mmcv.load', 'yaml.load', 'yaml.unsafe_load', 'jsonpickle.decode',
}
ARRAY_LOADERS = {'numpy.load'}  # unpickle only with allow_pickle=True


def _python_files():
    for top in ('coupleface', 'tools'):
        yield from sorted((ROOT / top).rglob('*.py'))


def _aliases(tree):
    """Local name -> dotted module/object name, from the file's imports."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split('.')[0]] = \
                    alias.name if alias.asname else alias.name.split('.')[0]
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                names[alias.asname or alias.name] = f'{node.module}.{alias.name}'
    return names


def _dotted(node, aliases):
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(aliases.get(node.id, node.id))
    name = '.'.join(reversed(parts))
    return name.replace('np.', 'numpy.', 1) if name.startswith('np.') else name


def _scan():
    """Every unpickling call or Unpickler subclass: [(file, scope, name, line)]."""
    found = []
    for path in _python_files():
        rel = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text(encoding='utf-8'))
        aliases = _aliases(tree)

        def visit(node, scope):
            for child in ast.iter_child_nodes(node):
                inner = scope
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    inner = child.name
                if isinstance(child, ast.ClassDef):
                    for base in child.bases:
                        name = _dotted(base, aliases)
                        if name in UNPICKLING:
                            found.append((rel, inner, name, child.lineno))
                if isinstance(child, ast.Call):
                    name = _dotted(child.func, aliases)
                    if name in UNPICKLING:
                        found.append((rel, scope, name, child.lineno))
                    elif name in ARRAY_LOADERS and any(
                            kw.arg == 'allow_pickle' and not (
                                isinstance(kw.value, ast.Constant) and kw.value.value is False)
                            for kw in child.keywords):
                        found.append((rel, scope, f'{name}(allow_pickle=...)', child.lineno))
                visit(child, inner)

        visit(tree, '<module>')
    return found


def test_every_unpickling_call_is_a_reviewed_safe_loader():
    found = _scan()
    unreviewed = [f'{rel}:{line} {name} in {scope}' for rel, scope, name, line in found
                  if (rel, scope, name) not in REVIEWED]
    assert not unreviewed, ('calls that can unpickle outside the safe loaders (use '
                            'coupleface.utils.checkpoint_load.safe_torch_load or '
                            'coupleface.datasets.bin_io.read_bin):\n' + '\n'.join(unreviewed))
    # the reviewed locations still exist (else the list has gone stale)
    assert {(rel, scope, name) for rel, scope, name, _ in found} == set(REVIEWED)


def test_the_scan_sees_aliases_and_allow_pickle():
    source = ('import torch as T\nimport numpy as np\nfrom pickle import loads as ld\n'
              'def f(p):\n    T.load(p)\n    ld(p)\n    np.load(p, allow_pickle=True)\n'
              '    np.load(p)\n    np.load(p, allow_pickle=False)\n')
    tree = ast.parse(source)
    aliases = _aliases(tree)
    calls = [_dotted(n.func, aliases) for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert calls.count('torch.load') == 1 and 'pickle.loads' in calls
    assert calls.count('numpy.load') == 3
    safe_call = next(n for n in ast.walk(ast.parse(
        (ROOT / 'coupleface/utils/checkpoint_load.py').read_text())) if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute) and n.func.attr == 'load'
        and isinstance(n.func.value, ast.Name) and n.func.value.id == 'torch')
    assert any(kw.arg == 'weights_only' and kw.value.value is True for kw in safe_call.keywords)


# ---------------------------------------------------------------------------
# Malicious files
# ---------------------------------------------------------------------------

def _payloads(marker):
    """Ways a pickle can run code: each creates ``marker`` when unpickled unsafely."""
    cmd = f'touch {marker}'

    class System:
        def __reduce__(self):
            return (os.system, (cmd,))

    class Exec:
        def __reduce__(self):
            return (exec, (f'open({str(marker)!r}, "w").close()',))

    class Popen:
        def __reduce__(self):
            return (subprocess.Popen, (['touch', str(marker)],))

    class Eval:
        def __reduce__(self):
            return (eval, (f'__import__("os").system({cmd!r})',))

    return dict(system=System(), exec=Exec(), popen=Popen(), eval=Eval())


@pytest.mark.parametrize('payload', ['system', 'exec', 'popen', 'eval'])
@pytest.mark.parametrize('protocol', [0, 2, 4, 5])
def test_malicious_bin_never_runs(tmp_path, payload, protocol):
    marker = tmp_path / 'pwned'
    path = str(tmp_path / 'lfw.bin')
    with open(path, 'wb') as f:
        pickle.dump(([b'\xff\xd8', _payloads(marker)[payload]], [True]), f, protocol=protocol)
    with pytest.raises(UnsafeFileError, match='refused'):
        read_bin(path)
    assert not marker.exists()


@pytest.mark.parametrize('call', [
    # a 60-byte file must not make the reader allocate gigabytes
    "(np.core.multiarray._reconstruct, (np.ndarray, (1 << 33,), b'B'))",
    '(bytes, (1 << 33,))',
])
def test_bin_cannot_allocate_more_than_it_holds(tmp_path, call):
    obj = eval(call)  # the reduce tuple of the crafted object

    class Bomb:
        def __reduce__(self):
            return obj

    path = str(tmp_path / 'bomb.bin')
    with open(path, 'wb') as f:
        pickle.dump(([Bomb(), Bomb()], [True]), f, protocol=2)
    assert osp.getsize(path) < 200
    with pytest.raises(BinFormatError, match='malformed'):
        read_bin(path)


def test_bin_numpy_ndarray_cannot_be_called(tmp_path):
    class Direct:
        def __reduce__(self):
            return (np.ndarray, ((1 << 33,), 'u1'))

    path = str(tmp_path / 'direct.bin')
    with open(path, 'wb') as f:
        pickle.dump(([Direct(), b''], [True]), f, protocol=2)
    with pytest.raises(BinFormatError, match='not a readable pickle'):
        read_bin(path)


def _evil_checkpoint(path, marker, payload='system'):
    torch.save({'state_dict': nn.Linear(2, 2).state_dict(),
                'meta': {'epoch': 1, 'iter': 4, 'x': _payloads(marker)[payload]}}, str(path))


@pytest.mark.parametrize('payload', ['system', 'exec', 'popen', 'eval'])
def test_malicious_checkpoint_never_runs_through_mmengine_and_teacher_loading(tmp_path,
                                                                              payload):
    from mmengine.runner.checkpoint import CheckpointLoader

    import coupleface  # noqa: F401  (installs the safe loader into MMEngine)
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    _evil_checkpoint(path, marker, payload)
    with pytest.raises(UnsafeCheckpointError, match='allow-list'):
        CheckpointLoader.load_checkpoint(str(path), map_location='cpu')  # load_from / resume
    with pytest.raises(UnsafeCheckpointError):
        load_state_dict_flexible(nn.Linear(2, 2), str(path))  # teacher checkpoints
    assert not marker.exists()


def test_malicious_checkpoint_in_tools_test_is_one_error_line(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    _evil_checkpoint(path, marker)
    config = ROOT / 'configs' / 'arcface' / 'iresnet18-w8_1xb128_synthfaces-56px.py'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, str(ROOT / 'tools' / 'test.py'), str(config),
                           str(path)], cwd=str(tmp_path), env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode != 0
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith('error:')]
    assert errors and 'UnsafeCheckpointError' in errors[0] and str(path) in errors[0], \
        proc.stderr[-3000:]
    assert not marker.exists()


def test_object_arrays_in_npz_and_npy_are_refused(tmp_path):
    marker = tmp_path / 'pwned'
    evil = np.array([_payloads(marker)['system']], dtype=object)
    npz = str(tmp_path / 'relations.npz')
    np.savez(npz, neighbours=evil, similarities=evil, centers=evil, meta=np.array('{}'))
    with pytest.raises(ValueError, match='relations.npz'):
        load_relations(npz)
    prefix = str(tmp_path / 'bank')
    np.save(prefix + '.npy', evil, allow_pickle=True)
    with open(prefix + '.json', 'w') as f:
        f.write('{"num_samples": 1, "embedding_dim": 1, "dtype": "float16"}')
    with pytest.raises(ValueError, match=r'bank\.npy: not a readable teacher bank array'):
        TeacherBank(prefix)
    assert not marker.exists()

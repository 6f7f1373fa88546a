"""The dependency checks: ranges equal the requirement files, errors name the fix, and a full
mmcv beside mmcv-lite (either order) keeps coupleface importable, with the conflict named."""
import importlib
import importlib.metadata as metadata
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import types

import pytest

from coupleface.utils import dependencies as deps

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _ranges(path):
    out = {}
    with open(osp.join(ROOT, path)) as f:
        for line in f:
            m = re.match(r'([A-Za-z0-9_.-]+)\s*>=\s*([\d.]+)\s*,\s*<\s*([\d.]+)\s*$',
                         line.split('#', 1)[0].strip())
            if m:
                out[m.group(1)] = (m.group(2), m.group(3))
    return out


def test_ranges_equal_the_requirement_files():
    runtime, mm = _ranges('requirements/runtime.txt'), _ranges('requirements/mminstall.txt')
    assert deps.OPENMMLAB_RANGES['mmengine'] == runtime['mmengine']
    assert deps.OPENMMLAB_RANGES['mmpretrain'] == runtime['mmpretrain']
    assert deps.OPENMMLAB_RANGES['mmcv'] == mm['mmcv']
    # mmcv is never an install requirement (it would overwrite a user's full mmcv)
    assert not {'mmcv', 'mmcv-lite'} & set(runtime)
    for extra, (_, req_file) in deps.EXTRAS.items():
        assert osp.isfile(osp.join(ROOT, req_file)), extra


def test_every_runtime_requirement_has_an_upper_bound_and_no_exact_pin():
    with open(osp.join(ROOT, 'requirements/runtime.txt')) as f:
        lines = [ln.split('#', 1)[0].strip() for ln in f]
    lines = [ln for ln in lines if ln]
    assert len(lines) >= 8
    for line in lines:
        assert '<' in line and '==' not in line, line


def test_release():
    assert deps.release('2.2.0rc1+cu118') == (2, 2, 0)
    assert deps.release('0.10.7') == (0, 10, 7)


def test_missing_mmcv_names_the_install_line(monkeypatch):
    real = importlib.import_module

    def fake(name, *a):
        if name == 'mmcv':
            raise ImportError('No module named mmcv')
        return real(name, *a)

    monkeypatch.setattr(deps.importlib, 'import_module', fake)
    with pytest.raises(ImportError, match=r"mmcv>=2.0.0,<2.3.0.*pip install --no-deps "
                                          r"'mmcv-lite>=2.0.0,<2.3.0'"):
        deps.check_openmmlab()


def test_out_of_range_version_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, 'mmpretrain', types.SimpleNamespace(__version__='1.3.1'))
    with pytest.raises(ImportError, match=r'mmpretrain 1.3.1 is installed.*'
                                          r"pip install 'mmpretrain>=1.2.0,<1.3.0'"):
        deps.check_openmmlab()


def test_both_mmcv_builds_warn(monkeypatch):
    versions = {'mmcv': '2.2.0', 'mmcv-lite': '2.2.0'}
    real = metadata.version
    monkeypatch.setattr(deps.metadata, 'version',
                        lambda d: versions[d] if d in versions else real(d))
    with pytest.warns(UserWarning, match='both mmcv 2.2.0 and mmcv-lite 2.2.0 are installed'):
        deps.check_openmmlab()


def test_require_extra_names_the_extra(monkeypatch):
    monkeypatch.setitem(deps.EXTRAS, 'nope', ('coupleface_no_such_module', 'requirements/x.txt'))
    with pytest.raises(ImportError, match=r"Thing needs coupleface_no_such_module "
                                          r"\(coupleface's 'nope' extra\).*coupleface\[nope\]"):
        deps.require_extra('nope', 'Thing')
    assert deps.require_extra('onnx', 'x').__name__ == 'onnxruntime'


def test_the_installed_coupleface_does_not_require_mmcv():
    """Our package must not pull mmcv-lite over a user's full mmcv (or the reverse)."""
    reqs = metadata.requires('coupleface') or []
    names = {re.split(r'[<>=!; \[]', r, maxsplit=1)[0].lower() for r in reqs
             if 'extra ==' not in r}
    assert 'mmengine' in names and not {'mmcv', 'mmcv-lite'} & names


def _fake_full_mmcv(target):
    """A "full mmcv" distribution in ``target``: the installed mmcv code, a marker module
    and dist-info named ``mmcv`` (building the real one needs a compiler and about 30
    minutes; what matters here is the shared ``mmcv/`` folder and the two names)."""
    import mmcv
    src = osp.dirname(mmcv.__file__)
    shutil.copytree(src, osp.join(target, 'mmcv'))
    with open(osp.join(target, 'mmcv', '_full_build.py'), 'w') as f:
        f.write('FULL_MMCV = True\n')
    info = osp.join(target, f'mmcv-{mmcv.__version__}.dist-info')
    os.makedirs(info)
    with open(osp.join(info, 'METADATA'), 'w') as f:
        f.write(f'Metadata-Version: 2.1\nName: mmcv\nVersion: {mmcv.__version__}\n')
    return mmcv.__version__


@pytest.mark.slow
def test_full_mmcv_beside_us_keeps_coupleface_and_tests_working(tmp_path):
    version = _fake_full_mmcv(str(tmp_path))
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    code = ('import warnings\nwarnings.simplefilter("always")\n'
            'with warnings.catch_warnings(record=True) as w:\n'
            '    import coupleface\n'
            'import mmcv, mmcv._full_build, mmpretrain.models\n'
            'from coupleface.setup_env import register_all_modules\nregister_all_modules()\n'
            'print(mmcv.__file__)\nprint("|".join(str(x.message) for x in w))\n')
    out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True,
                         text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    mmcv_file, warned = out.stdout.strip().splitlines()[-2:]
    assert mmcv_file.startswith(str(tmp_path))  # the full mmcv is the one used
    lite = metadata.version('mmcv-lite') if _has('mmcv-lite') else None
    if lite:  # installed after mmcv-lite: the conflict is named
        assert f'both mmcv {version} and mmcv-lite {lite} are installed' in warned
    tests = [osp.join(ROOT, 'tests/datasets/transforms/test_flip.py'),
             osp.join(ROOT, 'tests/models/losses/test_feature_consistency.py')]
    out = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
                          *tests], env=env, capture_output=True, text=True, cwd=ROOT,
                         timeout=600)
    assert out.returncode == 0, out.stdout[-2000:]


def _has(dist):
    try:
        metadata.version(dist)
        return True
    except metadata.PackageNotFoundError:
        return False

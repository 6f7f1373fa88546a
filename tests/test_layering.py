"""The package's import layering (docs/architecture.md §3): no import runs back up.

``coupleface.utils`` (and ``registry``, ``version``) import no other coupleface package;
``datasets`` nothing from ``models``/``engine``/``apis``; ``models`` nothing from
``engine``/``apis``. Every import counts, also those inside functions (a deferred import
is still a dependency), relative ones resolved against the importing module.
"""
import ast
import glob
import os.path as osp

import pytest

PACKAGE = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'coupleface')
# layer -> the coupleface packages it must not import
FORBIDDEN = {
    'utils': {'apis', 'benchmarks', 'datasets', 'engine', 'evaluation', 'mining', 'models',
              'setup_env', 'visualization', 'registry'},
    'registry': {'apis', 'benchmarks', 'datasets', 'engine', 'evaluation', 'mining', 'models',
                 'setup_env', 'utils', 'visualization'},
    'datasets': {'apis', 'benchmarks', 'engine', 'models', 'setup_env'},
    'models': {'apis', 'benchmarks', 'engine', 'setup_env'},
    # mining is pure functions over embeddings: only utils below it
    'mining': {'apis', 'benchmarks', 'datasets', 'engine', 'evaluation', 'models', 'setup_env',
               'visualization'},
}


def imported_packages(module: str, source: str) -> set:
    """The ``coupleface.<package>`` names ``source`` (module ``module``) imports."""
    found = set()
    parts = module.split('.')
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing module's package
                base = parts[:len(parts) - node.level]
                target = '.'.join(base + ([node.module] if node.module else []))
                names = [target] if node.module else [f'{target}.{a.name}' for a in node.names]
            else:
                names = [node.module or '']
                if node.module == 'coupleface':
                    names = [f'coupleface.{a.name}' for a in node.names]
        else:
            continue
        for name in names:
            bits = name.split('.')
            if bits[0] == 'coupleface' and len(bits) > 1:
                found.add(bits[1])
    return found


def violations(module: str, source: str) -> list:
    layer = module.split('.')[1]
    return sorted(imported_packages(module, source) & FORBIDDEN.get(layer, set()))


def _modules():
    for path in sorted(glob.glob(osp.join(PACKAGE, '**', '*.py'), recursive=True)):
        rel = osp.relpath(path, osp.dirname(PACKAGE))[:-3].replace(osp.sep, '.')
        if rel.endswith('.__init__'):
            rel = rel[:-len('.__init__')] + '.__init__'  # relative imports from the package
        yield rel, path


def test_no_import_runs_back_up():
    bad = []
    for module, path in _modules():
        if module.count('.') < 1 or module.split('.')[1] not in FORBIDDEN:
            continue
        with open(path) as f:
            found = violations(module, f.read())
        if found:
            bad.append(f'{osp.relpath(path, osp.dirname(PACKAGE))} imports coupleface.'
                       f'{", coupleface.".join(found)}')
    assert not bad, 'imports against the layering:\n' + '\n'.join(bad)
    assert sum(1 for _ in _modules()) > 100  # the walk saw the package


@pytest.mark.parametrize('module, source, expected', [
    ('coupleface.utils.dist', 'from coupleface.models import MODELS', ['models']),
    ('coupleface.utils.dist', 'def f():\n    import coupleface.engine.hooks\n', ['engine']),
    ('coupleface.datasets.transforms.flip', 'from ...apis import FaceEmbedder', ['apis']),
    ('coupleface.datasets.transforms.__init__', 'from ..samplers import X', []),
    ('coupleface.models.heads.arcface', 'from coupleface import engine', ['engine']),
    ('coupleface.models.heads.arcface', 'from ..losses import FCD\nimport numpy', []),
    ('coupleface.models.heads.arcface', 'from coupleface.datasets import X', []),
    ('coupleface.apis.face_embedder', 'from coupleface.engine import X', []),
])
def test_a_back_arrow_is_caught(module, source, expected):
    assert violations(module, source) == expected

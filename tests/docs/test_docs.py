"""The user docs name only what exists, so they cannot drift from the code silently.

Checked in ``docs/method.md``, ``docs/evaluation.md``, ``docs/deployment.md``,
``docs/model_zoo.md`` and ``CHANGELOG.md``:

- every repository path they name (``configs/...py``, ``tools/...py``, ``coupleface/...py``,
  ``scripts/...sh``, ``requirements/...txt``) exists;
- every ``--flag`` given to a tool in a shell block is defined by that tool, and every
  backticked ``--flag`` is defined by some tool;
- the registered types listed below are named in the docs and registered in the registry
  given; every ``type='X'`` in a code block and every backticked CamelCase name is a
  registered type, a class or function of ``coupleface``, or a listed external name;
- the config-key tables of ``docs/method.md`` list exactly the constructor arguments of
  their class, with the defaults of the code;
- a code block that starts with ``# configs/<path>.py`` is that config file, verbatim;
- links between these pages point at files and headings that exist.

The package is read with ``ast`` (no import), so the test runs in well under a second.
"""
from __future__ import annotations

import ast
import builtins
import re
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ('docs/method.md', 'docs/evaluation.md', 'docs/deployment.md', 'docs/model_zoo.md',
        'CHANGELOG.md', 'docs/data_preparation.md', 'docs/get_started.md',
        'docs/distributed.md')

#: Registered types the docs must name, with their registry (the variable in
#: ``coupleface/registry.py`` that registers them).
REGISTERED = {
    'CoupleFaceDistiller': 'MODELS',
    'FeatureConsistencyLoss': 'MODELS',
    'RelationAwareDistillationLoss': 'MODELS',
    'DistanceWiseRKD': 'MODELS',
    'AngleWiseRKD': 'MODELS',
    'EvaluationRankLoss': 'MODELS',
    'AdaDistillHead': 'MODELS',
    'LinearConnector': 'MODELS',
    'FaceRecognizer': 'MODELS',
    'FaceDataPreprocessor': 'MODELS',
    'IResNet': 'MODELS',
    'MobileFaceNet': 'MODELS',
    'ArcFaceHead': 'MODELS',
    'PartialFCHead': 'MODELS',
    'RelationSampler': 'DATA_SAMPLERS',
    'RelationMiningHook': 'HOOKS',
    'ConfigCheckHook': 'HOOKS',
    'AugmentSeedHook': 'HOOKS',
    'PartialFCCheckpointHook': 'HOOKS',
    'SyntheticMask': 'TRANSFORMS',
    'ProtocolMask': 'TRANSFORMS',
    'AlignFace': 'TRANSFORMS',
    'LoadFaceImage': 'TRANSFORMS',
    'PackFaceInputs': 'TRANSFORMS',
    'FaceAlbumentations': 'TRANSFORMS',
    'VerificationBinDataset': 'DATASETS',
    'IJBDataset': 'DATASETS',
    'MXFaceDataset': 'DATASETS',
    'ImageFolderFaceDataset': 'DATASETS',
    'VerificationMetric': 'METRICS',
    'IJBMetric': 'METRICS',
    'AllPairsVerificationMetric': 'METRICS',
}

#: Names the docs use that are not ours: MMEngine / mmcv / torch types, insightface's
#: ``LFold`` (compared with in docs/evaluation.md) and Python literals.
EXTERNAL = {'AmpOptimWrapper', 'HistoryBuffer', 'DefaultSampler', 'RandomFlip',
            'DistSamplerSeedHook', 'DataLoader', 'LFold', 'Conv2d',
            'None', 'True', 'False',
            # MMEngine's / mmpretrain's visualizer and backends (docs/get_started.md)
            'UniversalVisualizer', 'LocalVisBackend', 'WandbVisBackend', 'MLflowVisBackend'}

#: Classes whose config keys ``docs/method.md`` must tabulate.
KEY_TABLES = ('CoupleFaceDistiller', 'RelationAwareDistillationLoss', 'FeatureConsistencyLoss',
              'RelationSampler', 'RelationMiningHook')

PATH_RE = re.compile(r'(?<![\w./-])((?:configs|tools|coupleface|scripts|requirements)/'
                     r'[\w./-]*\.(?:py|sh|txt))')
FENCE_RE = re.compile(r'^```(\w*)\n(.*?)^```', re.M | re.S)


def _read(rel: str) -> str:
    return (ROOT / rel).read_text(encoding='utf-8')


@lru_cache(maxsize=None)
def _doc_texts() -> Tuple[Tuple[str, str], ...]:
    return tuple((rel, _read(rel)) for rel in DOCS)


def _blocks(text: str) -> List[Tuple[str, str]]:
    """``(language, body)`` of the fenced code blocks."""
    return [(m.group(1), m.group(2)) for m in FENCE_RE.finditer(text)]


@lru_cache(maxsize=None)
def _package() -> Tuple[Dict[str, str], Dict[str, ast.ClassDef], set]:
    """Registered class -> registry, class name -> node, every top-level def/class name."""
    registered: Dict[str, str] = {}
    classes: Dict[str, ast.ClassDef] = {}
    names: set = set()
    for path in sorted((ROOT / 'coupleface').rglob('*.py')):
        tree = ast.parse(path.read_text(encoding='utf-8'))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names.add(node.name)
            if not isinstance(node, ast.ClassDef):
                continue
            classes.setdefault(node.name, node)
            for dec in node.decorator_list:
                if (isinstance(dec, ast.Call) and isinstance(dec.func, ast.Attribute)
                        and dec.func.attr == 'register_module'
                        and isinstance(dec.func.value, ast.Name)):
                    registered[node.name] = dec.func.value.id
    return registered, classes, names


def _init_params(cls: ast.ClassDef, classes: Dict[str, ast.ClassDef]) -> Dict[str, object]:
    """``{name: default source or None (required)}`` of the class's ``__init__``, or of the
    ``__init__`` it inherits from a base class of the package."""
    init = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == '__init__'),
                None)
    if init is None:
        bases = [b.id for b in cls.bases if isinstance(b, ast.Name) and b.id in classes]
        if bases:
            return _init_params(classes[bases[0]], classes)
    assert init is not None, f'{cls.name} has no __init__'
    args = init.args
    positional = args.posonlyargs + args.args
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    params = {a.arg: (ast.unparse(d) if d is not None else None)
              for a, d in zip(positional, defaults) if a.arg != 'self'}
    params.update({a.arg: (ast.unparse(d) if d is not None else None)
                   for a, d in zip(args.kwonlyargs, args.kw_defaults)})
    return params


def _key_tables(text: str) -> Dict[str, List[Tuple[str, str]]]:
    """``{class: [(key, default cell), ...]}`` from ``### `Class``` + a key table."""
    tables: Dict[str, List[Tuple[str, str]]] = {}
    current = None
    for line in text.splitlines():
        heading = re.match(r'^### `(\w+)`\s*$', line)
        if heading:
            current = heading.group(1)
            tables[current] = []
            continue
        if line.startswith('#'):
            current = None
            continue
        row = re.match(r'^\| `(\w+)` \| (.*?) \| .* \|$', line)
        if current is not None and row:
            tables[current].append((row.group(1), row.group(2).strip()))
    return tables


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = heading.strip().lower().replace('`', '')
    text = re.sub(r'[^\w\- ]', '', text)
    return text.replace(' ', '-')


def _commands(body: str) -> List[str]:
    """Shell commands of a block, continuation lines joined, comments dropped."""
    joined = re.sub(r'\\\n\s*', ' ', body)
    return [ln.split(' #')[0].strip() for ln in joined.splitlines()
            if ln.strip() and not ln.strip().startswith('#')]


def test_paths_exist():
    missing = []
    for rel, text in _doc_texts():
        for path in PATH_RE.findall(text):
            if '...' in path:  # an abbreviation inside a quoted comment
                continue
            if not (ROOT / path).exists():
                missing.append(f'{rel}: {path}')
    assert not missing, 'paths named in the docs do not exist:\n' + '\n'.join(missing)


def test_tool_flags_exist():
    # a tool that calls the shared argparse helpers (coupleface/utils/cli.py) defines their flags
    helpers = (ROOT / 'coupleface' / 'utils' / 'cli.py').read_text(encoding='utf-8')
    tools = {p.relative_to(ROOT).as_posix(): p.read_text(encoding='utf-8')
             for p in (ROOT / 'tools').rglob('*.py')}
    uses_helpers = re.compile(r'from coupleface\.utils\.cli import \(?[^)]*?\badd_\w+_argument')
    tools = {rel: text + (helpers if uses_helpers.search(text) else '')
             for rel, text in tools.items()}
    problems = []
    for rel, text in _doc_texts():
        for lang, body in _blocks(text):
            if lang != 'bash':
                continue
            for cmd in _commands(body):
                tool = re.search(r'(tools/[\w/]+\.py)', cmd)
                if tool is None:
                    continue
                source = tools.get(tool.group(1))
                assert source is not None, f'{rel}: {tool.group(1)} does not exist'
                for flag in re.findall(r'(?<!\S)(--[a-z][\w-]*)', cmd):
                    if f"'{flag}'" not in source:
                        problems.append(f'{rel}: {tool.group(1)} has no {flag}')
        everything = '\n'.join(tools.values())
        for flag in re.findall(r'`(--[a-z][\w-]*)', text):
            if f"'{flag}'" not in everything:
                problems.append(f'{rel}: no tool defines {flag}')
    assert not problems, '\n'.join(problems)


def test_registered_types_are_named_and_registered():
    registered, _, _ = _package()
    docs = '\n'.join(text for _, text in _doc_texts())
    problems = []
    for name, registry in REGISTERED.items():
        if f'`{name}`' not in docs and f"type='{name}'" not in docs:
            problems.append(f'{name} is not named in the docs (drop it from REGISTERED?)')
        if registered.get(name) != registry:
            problems.append(f'{name} is registered in {registered.get(name)}, not {registry}')
    assert not problems, '\n'.join(problems)


def test_named_types_exist():
    registered, _, names = _package()
    unknown = []
    for rel, text in _doc_texts():
        for _, body in _blocks(text):
            for name in re.findall(r"type='([\w.]+)'", body):
                if name not in registered and name not in EXTERNAL:
                    unknown.append(f"{rel}: type='{name}'")
        for name in re.findall(r'`([A-Z][A-Za-z0-9]*[a-z][A-Za-z0-9]*)`', text):
            if not (name in registered or name in names or name in EXTERNAL
                    or hasattr(builtins, name)):
                unknown.append(f'{rel}: `{name}`')
    assert not unknown, 'names in the docs that the code does not define:\n' + '\n'.join(
        sorted(set(unknown)))


def test_config_key_tables_match_signatures():
    _, classes, _ = _package()
    tables = _key_tables(_read('docs/method.md'))
    for name in KEY_TABLES:
        assert name in tables, f'docs/method.md has no key table for {name}'
    problems = []
    for name, rows in tables.items():
        if name not in classes:
            problems.append(f'{name}: no such class')
            continue
        params = _init_params(classes[name], classes)
        documented = dict(rows)
        if len(documented) != len(rows):
            problems.append(f'{name}: a key is listed twice')
        for key in sorted(set(params) - set(documented)):
            problems.append(f'{name}.{key}: missing from the table')
        for key in sorted(set(documented) - set(params)):
            problems.append(f'{name}.{key}: not an argument of {name}')
        for key, cell in rows:
            if key not in params:
                continue
            default = params[key]
            if default is None:
                if not cell.startswith('required'):
                    problems.append(f'{name}.{key}: required, but the table says {cell!r}')
            elif cell != f'`{default}`':
                problems.append(f'{name}.{key}: default is {default}, the table says {cell!r}')
    assert not problems, '\n'.join(problems)


def test_quoted_configs_are_verbatim():
    quoted = 0
    for rel, text in _doc_texts():
        for lang, body in _blocks(text):
            first = body.split('\n', 1)[0]
            match = re.match(r'^# (configs/[\w./-]+\.py)$', first)
            if lang != 'python' or match is None:
                continue
            quoted += 1
            path = ROOT / match.group(1)
            assert path.is_file(), f'{rel}: {match.group(1)} does not exist'
            shown = body.split('\n', 1)[1].rstrip()
            actual = path.read_text(encoding='utf-8').rstrip()
            assert shown == actual, (f'{rel}: the quoted {match.group(1)} differs from the file; '
                                     'copy the file into the doc again')
    assert quoted >= 2, 'docs/method.md should quote the FCD and CoupleFace configs'


@pytest.mark.parametrize('rel', DOCS)
def test_links_resolve(rel):
    text = _read(rel)
    problems = []
    for target in re.findall(r'\]\(([^)\s]+)\)', text):
        if re.match(r'^[a-z]+://', target):
            continue
        path, _, anchor = target.partition('#')
        dest = (ROOT / rel).parent / path if path else ROOT / rel
        dest_rel = dest.resolve().relative_to(ROOT).as_posix()
        if dest_rel not in DOCS:
            continue  # pages owned elsewhere (benchmarks.md, get_started.md, ...)
        if anchor:
            headings = [_slug(h) for h in re.findall(r'^#+ (.+)$', _read(dest_rel), re.M)]
            if anchor not in headings:
                problems.append(f'{rel}: #{anchor} is not a heading of {dest_rel}')
    assert not problems, '\n'.join(problems)

"""Install coupleface (mmpretrain's conventions: requirements parsed from files,
configs/tools shipped under ``coupleface/.mim`` for ``mim`` and ``coupleface::``)."""
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def readme() -> str:
    with open(osp.join(HERE, 'README.md'), encoding='utf-8') as f:
        return f.read()


def get_version() -> str:
    scope: dict = {}
    with open(osp.join(HERE, 'coupleface', 'version.py'), encoding='utf-8') as f:
        exec(compile(f.read(), 'version.py', 'exec'), scope)
    return scope['__version__']


def parse_requirements(fname: str) -> list:
    """Read requirement lines, following ``-r`` includes and dropping comments."""
    out = []
    with open(osp.join(HERE, fname), encoding='utf-8') as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            if line.startswith('-r '):
                out += parse_requirements(
                    osp.join(osp.dirname(fname), line.split(' ', 1)[1]))
            elif not line.startswith('-'):
                out.append(line)
    return out


def add_mim_extension() -> None:
    """Put configs, tools and model-index.yml under ``coupleface/.mim``.

    Symlinks for develop/editable installs (so edits are live), copies when a
    wheel or sdist is built. mmpretrain only recognises ``develop``; PEP 660
    editable installs run ``editable_wheel``, which we treat the same way.
    """
    argv = set(sys.argv)
    if argv & {'develop', 'editable_wheel'}:
        mode = 'symlink'
    elif argv & {'sdist', 'bdist_wheel', 'build', 'install', 'build_py'}:
        mode = 'copy'
    else:
        return
    mim_dir = osp.join(HERE, 'coupleface', '.mim')
    os.makedirs(mim_dir, exist_ok=True)
    for name in ('configs', 'tools', 'model-index.yml'):
        src = osp.join(HERE, name)
        if not osp.exists(src):
            continue
        dst = osp.join(mim_dir, name)
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim_dir), dst)
        elif osp.isdir(src):
            shutil.copytree(src, dst)
        else:
            shutil.copyfile(src, dst)


if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='coupleface',
        version=get_version(),
        description='CoupleFace face-recognition distillation for OpenMMLab',
        long_description=readme(),
        long_description_content_type='text/markdown',
        license='Apache-2.0',
        python_requires='>=3.9',
        packages=find_packages(exclude=('configs', 'tools', 'tests', 'docs')),
        include_package_data=True,
        package_data={'coupleface': ['.mim/**/*', '.mim/*']},
        install_requires=parse_requirements('requirements/runtime.txt'),
        extras_require={
            'all': parse_requirements('requirements.txt') + parse_requirements(
                'requirements/albu.txt'),
            'tests': parse_requirements('requirements/tests.txt'),
            'albu': parse_requirements('requirements/albu.txt'),
            'onnx': parse_requirements('requirements/onnx.txt'),
            'tensorboard': parse_requirements('requirements/tensorboard.txt'),
            'mim': parse_requirements('requirements/mminstall.txt'),
        },
        zip_safe=False,
    )

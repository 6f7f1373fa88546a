"""Reuse a trained teacher (and its bank) only for the data and config it was made from.

The demo and the benchmark suites train the teacher once per dataset and reuse it, so the
student rows are what a run costs. A reused output must still be the one the run would
make: :func:`fingerprint` hashes what determines it (the dataset's ``meta.json`` settings,
the fully resolved config with its ``--cfg-options``, any extra inputs such as the teacher
checkpoint's sha256), :func:`write_record` stores it with the output's own sha256 next to
the output, and :func:`check_record` refuses, in one line naming what differs, a record
made from other data or another config, or an output changed since it was recorded.
"""
from __future__ import annotations

import hashlib
import json
import os
import os.path as osp
from typing import Any, Dict, Mapping, Optional, Sequence

from .file_hash import file_sha256

__all__ = ['StaleOutputError', 'check_record', 'fingerprint', 'write_record']


class StaleOutputError(ValueError):
    """A cached output was made from other inputs, or changed since it was recorded."""


def _data_settings(data_dir: str) -> Dict[str, Any]:
    meta = osp.join(data_dir, 'meta.json')
    if not osp.isfile(meta):
        return dict(data_dir=osp.abspath(data_dir))  # not SynthFaces: the path names it
    with open(meta, encoding='utf-8') as f:
        return dict(json.load(f).get('settings', {}))


def fingerprint(config: str, cfg_options: Sequence[str] = (), data_dir: Optional[str] = None,
                extra: Optional[Mapping[str, Any]] = None) -> Dict[str, str]:
    """The parts that determine an output, each hashed.

    Args:
        config: Config path.
        cfg_options: ``key=value`` overrides the run passes (as on the command line).
        data_dir: Dataset folder; its SynthFaces ``meta.json`` settings are hashed (other
            folders by path).
        extra: Further inputs, e.g. ``{'teacher_sha256': ...}``.

    Returns:
        dict: ``config``, ``data`` and ``extra`` sha256 hex digests.
    """
    from mmengine.config import Config, DictAction

    cfg = Config.fromfile(config)
    if cfg_options:
        import argparse

        parser = argparse.ArgumentParser()
        parser.add_argument('--cfg-options', nargs='+', action=DictAction)
        cfg.merge_from_dict(parser.parse_args(['--cfg-options', *cfg_options]).cfg_options)

    def digest(obj: Any) -> str:
        return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()

    return dict(config=digest(cfg.to_dict()),
                data=digest(_data_settings(data_dir) if data_dir else None),
                extra=digest(dict(extra or {})))


def write_record(output: str, parts: Mapping[str, str]) -> str:
    """Record ``output``'s fingerprint and sha256 in ``<output>.record.json``.

    Args:
        output: The cached file (a checkpoint, a bank's ``.npy``).
        parts: Its :func:`fingerprint`.

    Returns:
        str: The record's path.
    """
    path = output + '.record.json'
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(dict(parts=dict(parts), sha256=file_sha256(output)), f, indent=2)
        f.write('\n')
    os.replace(tmp, path)
    return path


def check_record(output: str, parts: Mapping[str, str]) -> None:
    """Refuse ``output`` unless its record says it was made from ``parts`` and is unchanged.

    Args:
        output: The cached file.
        parts: The :func:`fingerprint` this run would make it from.

    Raises:
        StaleOutputError: no record, other inputs (the differing parts are named), or the
            file changed since it was recorded.
    """
    path = output + '.record.json'
    if not osp.isfile(path):
        raise StaleOutputError(f'{output} has no {osp.basename(path)}: cannot tell what it was '
                               'made from; delete it to make it again')
    with open(path, encoding='utf-8') as f:
        record = json.load(f)
    differs = sorted(k for k in set(parts) | set(record.get('parts', {}))
                     if record.get('parts', {}).get(k) != parts.get(k))
    if differs:
        raise StaleOutputError(f'{output} was made from another {" and ".join(differs)} than '
                               'this run uses; delete it (or use another work dir) to make it '
                               'again')
    if record.get('sha256') != file_sha256(output):
        raise StaleOutputError(f'{output} changed since it was recorded (sha256 differs); '
                               'delete it to make it again')

"""Turn a CoupleFaceDistiller checkpoint into a plain recognizer checkpoint of its student.

A distiller checkpoint holds ``student.*`` (backbone, neck, margin head), the student-side
``connector.*`` and, as ``_extra_state``, where the teacher came from (its checkpoint path and
sha256, or the teacher bank); never teacher weights. The output is
``{'state_dict': {backbone.*, [neck.*], head.*}, 'meta': {...}}``: the ``student.`` prefix is
stripped, the connector (only needed to compare with the teacher) is dropped, and ``meta``
keeps the training meta of the source checkpoint plus the teacher provenance (``teacher``)
and the source checkpoint (``extracted_from``). It loads with ``strict=True`` into the
student ``FaceRecognizer`` (``tools/test.py``, ``FaceEmbedder``,
``tools/deployment/pytorch2onnx.py``) and ``tools/model_converters/to_insightface.py``
makes an insightface ``backbone.pth`` of it. Written atomically (temp file + rename).

Examples:
    python tools/model_converters/extract_student.py work_dirs/coupleface_mbf/epoch_20.pth \\
        work_dirs/coupleface_mbf/student_epoch_20.pth
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
from typing import Any, Dict, Optional, Sequence


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Extract the student recognizer of a CoupleFaceDistiller checkpoint')
    parser.add_argument('checkpoint', help='distiller checkpoint (student.* keys)')
    parser.add_argument('out', help='output recognizer checkpoint (.pth)')
    return parser.parse_args(argv)


def extract_student(checkpoint: str, out: str) -> Dict[str, Any]:
    """Write the student of ``checkpoint`` to ``out`` as a recognizer checkpoint.

    Args:
        checkpoint: A ``CoupleFaceDistiller`` checkpoint.
        out: The output path.

    Returns:
        dict: What was written (``state_dict`` and ``meta``) and ``dropped`` (the keys left
        out, e.g. ``connector.proj.weight``).

    Raises:
        ValueError: the checkpoint has no ``student.*`` keys.
    """
    from coupleface.utils.checkpoint_save import atomic_save
    from coupleface.utils.file_hash import file_sha256
    from coupleface.utils.recognizer_checkpoint import read_recognizer_checkpoint

    state, info = read_recognizer_checkpoint(checkpoint)
    if info['kind'] != 'distiller':
        raise ValueError(f'{checkpoint} has no student.* keys: not a distiller checkpoint '
                         f'(it looks like a {info["kind"]} checkpoint, already usable as is)')
    meta = dict(info['meta'])
    meta['teacher'] = dict(info.get('teacher') or {})
    meta['extracted_from'] = dict(checkpoint=osp.abspath(checkpoint),
                                  sha256=file_sha256(checkpoint),
                                  dropped_keys=list(info['dropped']))
    result = dict(state_dict=state, meta=meta)
    atomic_save(result, out)
    return dict(result, dropped=list(info['dropped']))


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    result = extract_student(args.checkpoint, args.out)
    state = result['state_dict']
    parts = sorted({k.split('.', 1)[0] for k in state})
    print(f'wrote {args.out}: {len(state)} tensors ({", ".join(parts)})')
    if result['dropped']:
        print(f'  dropped: {", ".join(result["dropped"])}')
    teacher = result['meta']['teacher']
    if teacher:
        print('  teacher: ' + ', '.join(f'{k}={v}' for k, v in teacher.items()))
    return result


if __name__ == '__main__':
    from coupleface.utils.cli import run_cli
    sys.exit(run_cli(main))

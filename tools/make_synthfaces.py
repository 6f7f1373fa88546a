"""Generate a SynthFaces data set: a training set and LFW-style val/test ``.bin`` sets.

Writes into OUT_DIR::

    train.rec, train.idx, property   --format rec (default): training identities
                                     0 .. num_ids-1 as insightface RecordIO, the
                                     layout of MS1M (MXFaceDataset reads it)
    train/<identity>/<image>.jpg     --format folder: the same images as identity
                                     folders (ImageFolderFaceDataset reads them)
    val.bin                          pairs of identities 1,000,000 + ...
    test.bin                         pairs of identities 2,000,000 + ...
    meta.json                        arguments, format, counts, versions, completion flag

Both formats hold the same JPEG bytes in the same order (sample ``k`` is the same
image). Validation and test identities are disjoint from training and from each
other (same world seed, so they come from the same family prototypes).

Re-running with the same arguments (format included) on a complete OUT_DIR does
nothing. With other arguments it stops, unless ``--force`` (which deletes the
training set of either format, val.bin and test.bin in OUT_DIR and regenerates).
An interrupted run (meta.json says incomplete) is regenerated without ``--force``.

Example::

    python tools/make_synthfaces.py data/synthfaces            # the defaults (difficulty 0.8)
    python tools/make_synthfaces.py data/synthfaces --difficulty 0.7 --num-ids 300 \\
        --imgs-per-id 16 --val-pairs 1000 --test-pairs 3000 --all-pairs-ids 300  # the demo's
    python tools/make_synthfaces.py data/synthfaces_folder --format folder
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import os.path as osp
import shutil
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional

NUM_FOLDS = 10
META_NAME = 'meta.json'
FORMATS = ('rec', 'folder')
#: What each format writes for the training set, relative to OUT_DIR.
TRAIN_FILES = {'rec': ['train.rec', 'train.idx', 'property'], 'folder': ['train']}
#: The labelled all-pairs sets (``--all-pairs-ids``): folders of ids.rec, ids.idx, property.
ALL_PAIRS_DIRS = ('all_pairs_val', 'all_pairs_test')
ALL_PAIRS_FILES = ('ids.rec', 'ids.idx', 'property')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    from coupleface.utils.cli import add_synthfaces_arguments

    parser = argparse.ArgumentParser(
        description='Generate SynthFaces: the training set (OUT_DIR/train.rec, train.idx and '
        'property with --format rec; OUT_DIR/train/<id>/<img>.jpg with --format folder), '
        'OUT_DIR/val.bin, OUT_DIR/test.bin, with --all-pairs-ids the labelled sets '
        'OUT_DIR/all_pairs_{val,test}/ids.rec (scored over all pairs by '
        'tools/eval_all_pairs.py), and OUT_DIR/meta.json. Re-running with the same '
        'arguments reuses a complete OUT_DIR; other arguments need --force, which deletes '
        'and regenerates the training set, val.bin and test.bin.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('out_dir', help='output folder')
    parser.add_argument('--format', choices=FORMATS, default='rec',
                        help='training set format: insightface RecordIO (train.rec/train.idx/'
                        'property, read by MXFaceDataset) or identity folders (train/<id>/'
                        '<img>.jpg, read by ImageFolderFaceDataset); the pair sets are .bin '
                        'in both cases')
    parser.add_argument('--num-ids', type=int, default=500, help='training identities')
    parser.add_argument('--imgs-per-id', type=int, default=20, help='images per identity')
    parser.add_argument('--val-pairs', type=int, default=6000,
                        help=f'validation pairs: a multiple of {2 * NUM_FOLDS} (10 folds, '
                        'half positive, half negative), 0 = no val.bin')
    parser.add_argument('--test-pairs', type=int, default=6000,
                        help=f'test pairs: a multiple of {2 * NUM_FOLDS}, 0 = no test.bin')
    parser.add_argument('--all-pairs-ids', type=int, default=0,
                        help='identities of each labelled all-pairs set (validation and '
                        'test, unseen in training; 0 = none)')
    parser.add_argument('--all-pairs-imgs', type=int, default=10,
                        help='images per identity of the all-pairs sets')
    add_synthfaces_arguments(parser, difficulty=0.8)
    parser.add_argument('--set', dest='overrides', action='append', default=[],
                        metavar='KEY=VALUE',
                        help='override a SynthFacesConfig field, e.g. --set occlusion_prob=0.1 '
                        '(repeatable)')
    parser.add_argument('--workers', type=int, default=min(4, os.cpu_count() or 1),
                        help='rendering processes')
    parser.add_argument('--force', action='store_true',
                        help='regenerate even if OUT_DIR holds SynthFaces with other arguments')
    parser.add_argument('--no-progress', action='store_true', help='hide progress bars')
    return parser.parse_args(argv)


def _parse_overrides(items: List[str]) -> Dict[str, Any]:
    out = {}
    for item in items:
        key, sep, value = item.partition('=')
        if not sep or not key:
            raise SystemExit(f'error: --set expects KEY=VALUE, got {item!r}')
        try:
            out[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            out[key.strip()] = value.strip()
    return out


def _check(args: argparse.Namespace) -> None:
    from coupleface.datasets.synthfaces import TEST_ID_OFFSET, VAL_ID_OFFSET

    def fail(msg: str) -> None:
        raise SystemExit(f'error: {msg}')

    if args.num_ids < 1 or args.num_ids >= VAL_ID_OFFSET:
        fail(f'--num-ids must be in [1, {VAL_ID_OFFSET}), got {args.num_ids}')
    if args.imgs_per_id < 1:
        fail(f'--imgs-per-id must be >= 1, got {args.imgs_per_id}')
    for name, pairs in (('--val-pairs', args.val_pairs), ('--test-pairs', args.test_pairs)):
        if pairs < 0 or pairs % (2 * NUM_FOLDS) or pairs >= TEST_ID_OFFSET - VAL_ID_OFFSET:
            fail(f'{name} must be 0 or a positive multiple of {2 * NUM_FOLDS} (10 folds, each '
                 f'with as many positive as negative pairs) below '
                 f'{TEST_ID_OFFSET - VAL_ID_OFFSET}, got {pairs}')
    if not 0 <= args.all_pairs_ids < VAL_ID_OFFSET:
        fail(f'--all-pairs-ids must be in [0, {VAL_ID_OFFSET}), got {args.all_pairs_ids}')
    if args.all_pairs_ids and args.all_pairs_imgs < 2:
        fail(f'--all-pairs-imgs must be >= 2 (genuine pairs), got {args.all_pairs_imgs}')
    if args.size < 8:
        fail(f'--size must be >= 8, got {args.size}')
    if args.seed < 0:
        fail(f'--seed must be >= 0, got {args.seed}')


def _write_json(path: str, obj: Dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(prefix='.tmp_', suffix='.json', dir=osp.dirname(path))
    with os.fdopen(fd, 'w', encoding='utf-8') as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write('\n')
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _outputs(out_dir: str) -> List[str]:
    """Everything a run of either format may have written (meta.json aside)."""
    names = [name for fmt in FORMATS for name in TRAIN_FILES[fmt]] + ['val.bin', 'test.bin']
    names += list(ALL_PAIRS_DIRS)
    return [osp.join(out_dir, name) for name in names]


def _all_pairs_note(args: argparse.Namespace) -> str:
    if not args.all_pairs_ids:
        return ''
    n = args.all_pairs_ids * args.all_pairs_imgs
    genuine = args.all_pairs_ids * args.all_pairs_imgs * (args.all_pairs_imgs - 1) // 2
    return (f', all-pairs val/test sets of {args.all_pairs_ids} identities x '
            f'{args.all_pairs_imgs} images ({n * (n - 1) // 2 - genuine} impostor pairs each)')


def _describe(settings: Dict[str, Any]) -> str:
    return 'image folders' if settings.get('format') == 'folder' else 'RecordIO'


def _remove_outputs(out_dir: str) -> None:
    for path in _outputs(out_dir):
        if osp.isdir(path):
            shutil.rmtree(path)
        elif osp.exists(path):
            os.remove(path)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    _check(args)
    from coupleface import __version__
    from coupleface.datasets.synthfaces import (
        ALL_PAIRS_TEST_ID_OFFSET,
        ALL_PAIRS_VAL_ID_OFFSET,
        SYNTHFACES_VERSION,
        TEST_ID_OFFSET,
        VAL_ID_OFFSET,
        SynthFacesConfig,
        make_pair_set,
        make_worker_pool,
        write_image_folder,
    )
    from coupleface.datasets.synthfaces.writers import write_record_file

    overrides = _parse_overrides(args.overrides)
    try:
        cfg = SynthFacesConfig.from_any(dict(difficulty=args.difficulty, **overrides))
    except (TypeError, ValueError) as exc:
        raise SystemExit(f'error: {exc}')
    settings = dict(
        synthfaces_version=SYNTHFACES_VERSION, format=args.format, num_ids=args.num_ids,
        imgs_per_id=args.imgs_per_id, val_pairs=args.val_pairs, test_pairs=args.test_pairs,
        size=args.size, seed=args.seed, config=cfg.to_dict(), num_folds=NUM_FOLDS,
        val_id_offset=VAL_ID_OFFSET, test_id_offset=TEST_ID_OFFSET)
    if args.all_pairs_ids:  # only when asked: folders made before keep matching their meta
        settings.update(all_pairs_ids=args.all_pairs_ids, all_pairs_imgs=args.all_pairs_imgs,
                        all_pairs_id_offsets=[ALL_PAIRS_VAL_ID_OFFSET, ALL_PAIRS_TEST_ID_OFFSET])
    out_dir = args.out_dir
    meta_path = osp.join(out_dir, META_NAME)
    os.makedirs(out_dir, exist_ok=True)

    if osp.exists(meta_path):
        with open(meta_path, encoding='utf-8') as f:
            meta = json.load(f)
        old = dict(meta.get('settings', {}))
        old.setdefault('format', 'folder')  # written before --format existed: folders
        same = old == settings
        done = all(osp.exists(osp.join(out_dir, p)) for p in meta.get('files', []))
        if meta.get('complete') and same and done:
            print(f'SynthFaces in {out_dir} is already complete with these arguments '
                  f'({meta["counts"]["train_images"]} training images as {_describe(old)}, '
                  f'{args.val_pairs} val / {args.test_pairs} test pairs): nothing to do.')
            return 0
        if meta.get('complete') and not same and not args.force:
            changed = sorted(k for k in set(settings) | set(old)
                             if settings.get(k) != old.get(k))
            raise SystemExit(f'error: {out_dir} holds SynthFaces made with other arguments '
                             f'(differs in: {", ".join(changed)}); pass --force to delete and '
                             'regenerate it, or choose another OUT_DIR')
    elif any(osp.exists(p) for p in _outputs(out_dir)) and not args.force:
        raise SystemExit(f'error: {out_dir} has a training set (train/ or train.rec), val.bin '
                         f'or test.bin but no {META_NAME}; '
                         'pass --force to overwrite them, or choose another OUT_DIR')
    _remove_outputs(out_dir)

    files = TRAIN_FILES[args.format] + [
        f'{name}.bin' for name, pairs in (('val', args.val_pairs), ('test', args.test_pairs))
        if pairs]
    if args.all_pairs_ids:
        files += [osp.join(d, name) for d in ALL_PAIRS_DIRS for name in ALL_PAIRS_FILES]
    meta = dict(generator='coupleface tools/make_synthfaces.py', coupleface_version=__version__,
                settings=settings, complete=False, files=files)
    _write_json(meta_path, meta)

    progress = not args.no_progress
    start = time.perf_counter()
    pool_ctx = make_worker_pool(args.workers) if args.workers > 1 else contextlib.nullcontext(1)
    with pool_ctx as workers:
        write_train = write_record_file if args.format == 'rec' else write_image_folder
        train_images = write_train(
            osp.join(out_dir, 'train'), args.num_ids, args.imgs_per_id, seed=args.seed,
            size=args.size, cfg=cfg, id_offset=0, workers=workers, progress=progress)
        for name, pairs, offset in (('val', args.val_pairs, VAL_ID_OFFSET),
                                    ('test', args.test_pairs, TEST_ID_OFFSET)):
            if pairs:
                make_pair_set(osp.join(out_dir, f'{name}.bin'), pairs, seed=args.seed,
                              size=args.size, cfg=cfg, id_offset=offset, num_folds=NUM_FOLDS,
                              workers=workers, progress=progress)
        all_pairs_images = 0
        if args.all_pairs_ids:
            for name, offset in zip(ALL_PAIRS_DIRS,
                                    (ALL_PAIRS_VAL_ID_OFFSET, ALL_PAIRS_TEST_ID_OFFSET)):
                os.makedirs(osp.join(out_dir, name), exist_ok=True)
                all_pairs_images += write_record_file(
                    osp.join(out_dir, name, 'ids'), args.all_pairs_ids, args.all_pairs_imgs,
                    seed=args.seed, size=args.size, cfg=cfg, id_offset=offset,
                    workers=workers, progress=progress)
    seconds = time.perf_counter() - start
    total = train_images + 2 * (args.val_pairs + args.test_pairs) + all_pairs_images
    meta.update(complete=True, seconds=round(seconds, 2), counts=dict(
        train_identities=args.num_ids, train_images=train_images, val_pairs=args.val_pairs,
        test_pairs=args.test_pairs, val_images=2 * args.val_pairs,
        test_images=2 * args.test_pairs))
    if args.all_pairs_ids:
        meta['counts'].update(all_pairs_identities=args.all_pairs_ids,
                              all_pairs_images_per_set=all_pairs_images // 2)
    _write_json(meta_path, meta)
    print(f'SynthFaces written to {out_dir}: {args.num_ids} identities x {args.imgs_per_id} '
          f'images as {_describe(settings)}, {args.val_pairs} val and {args.test_pairs} test '
          f'pairs{_all_pairs_note(args)}; {total} images in {seconds:.1f} s '
          f'({total / max(seconds, 1e-9):.0f} images/s, {args.workers} worker(s)).')
    return 0


if __name__ == '__main__':
    sys.exit(main())

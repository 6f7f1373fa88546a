"""Benchmark the RecordIO data path: MXFaceDataset + pipeline against raw ``cv2.imdecode``.

Measured side by side in one run, on the same records in the same shuffled
order, with a warm page cache:

* images/s of ``MXFaceDataset`` + ``LoadFaceImage`` / ``RandomFlip`` /
  ``PackFaceInputs`` through a torch ``DataLoader`` with mmengine's
  ``pseudo_collate``, of the fast path with a per-sample decode (``LoadFaceImage`` /
  ``PackFaceArrays`` + ``face_batch_collate(flip_prob=0.5)``, the flips drawn for the
  batch) and with the decode in the collate (``PackFaceArrays(size=112)`` +
  ``face_batch_collate(flip_prob=0.5, decode='cpu')``), and of a
  DataLoader that only ``cv2.imdecode``s the same payloads held in memory, for 0
  (in-process), 1 and 2 workers, interleaved (``round_robin``, median of ``--repeats``
  rounds), with the ratios to the raw decode (the fast path's target: >= 0.8 in-process);
* the reader's own cost (seek + read + header parse, no decode) as a
  percentage of the raw decode time (target <= 10 %);
* the header scan that builds the data list (ms per 10k records);
* peak RSS of a fresh process that reads and decodes every record, for two
  file sizes (the index costs ~64 bytes per record; nothing grows with bytes).

Examples:
    python tools/analysis_tools/benchmark_dataloader.py --make-synthetic 20000
    python tools/analysis_tools/benchmark_dataloader.py --rec data/faces_emore/train
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys
import tempfile
import time
from typing import Optional, Sequence

from coupleface.benchmarks.recordio_data import (
    RawDecode,
    build_dataset,
    build_fast_dataset,
    device_decoder,
    fast_collate,
    images_per_s,
    make_loader,
    make_synthetic,
)
from coupleface.utils.benchmarking import (
    MiB,
    child_env,
    median,
    peak_rss_bytes,
    round_robin,
    run_json_child,
)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='RecordIO data-path benchmark')
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument('--rec', help='path of an existing .rec/.idx without extension')
    src.add_argument('--make-synthetic', type=int, metavar='N',
                     help='write N synthetic 112x112 JPEG records to a temporary folder')
    parser.add_argument('--num-samples', type=int, default=3000,
                        help='images timed per configuration (default 3000)')
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--workers', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--repeats', type=int, default=3,
                        help='interleaved rounds per configuration; the median is printed')
    parser.add_argument('--rss-sizes', type=int, nargs=2, default=None, metavar=('N1', 'N2'),
                        help='synthetic record counts for the peak-RSS comparison '
                             '(default: N and 4N with --make-synthetic, 5000 20000 with --rec)')
    parser.add_argument('--no-rss', action='store_true', help='skip the peak-RSS processes')
    parser.add_argument('--device-decode', metavar='DEVICE',
                        help="add (g): the loader ships JPEG bytes (decode='device') and "
                             'FaceDataPreprocessor decodes each batch on DEVICE (cuda: nvJPEG; '
                             'cpu: the fallback), timed together')
    parser.add_argument('--rss-probe', help=argparse.SUPPRESS)  # internal: child process
    return parser.parse_args(argv)


def rss_probe(prefix: str) -> dict:
    """Child process: peak RSS before and after reading + decoding every record once."""
    import cv2
    import numpy as np

    from coupleface.datasets.mx_record import unpack
    before = peak_rss_bytes() / MiB  # VmHWM restarts at exec, unlike ru_maxrss
    dataset = build_dataset(prefix)
    reader = dataset.reader
    keys = dataset.get_rec_keys()
    for i in range(keys.size):
        _, payload = unpack(reader.read_idx(int(keys[i])))
        cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR)
    return dict(records=len(dataset), file_mib=osp.getsize(prefix + '.rec') / 2**20,
                rss_before_mib=before, rss_peak_mib=peak_rss_bytes() / MiB)


def _run_probe(prefix: str) -> dict:
    return run_json_child([osp.abspath(__file__), '--rec', prefix, '--rss-probe', prefix],
                          child_env(threads=1, mmap_threshold=None))


def benchmark(prefix: str, args: argparse.Namespace) -> None:
    import cv2
    import numpy as np

    from coupleface.datasets.mx_record import unpack

    cv2.setNumThreads(1)
    t0 = time.perf_counter()
    dataset = build_dataset(prefix)
    scan_s = time.perf_counter() - t0
    reader = dataset.reader
    n = len(dataset)
    t0 = time.perf_counter()
    reader.scan_labels(dataset.get_rec_keys())
    scan_only_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    order = rng.permutation(n)[:min(n, args.num_samples)]
    keys = dataset.get_rec_keys()[order].tolist()
    # warm the page cache so both sides read from memory
    payloads = [unpack(reader.read_idx(k))[1] for k in dataset.get_rec_keys().tolist()]
    mean_bytes = float(np.mean([len(p) for p in payloads]))

    # reader cost vs decode cost, per record, same keys
    t0 = time.perf_counter()
    for k in keys:
        unpack(reader.read_idx(k))
    read_us = (time.perf_counter() - t0) / len(keys) * 1e6
    subset = [payloads[i] for i in order]
    t0 = time.perf_counter()
    for p in subset:
        cv2.imdecode(np.frombuffer(p, np.uint8), cv2.IMREAD_COLOR)
    decode_us = (time.perf_counter() - t0) / len(subset) * 1e6

    raw = RawDecode(payloads)
    load_only = build_dataset(prefix, full_pipeline=False)
    per_sample = build_fast_dataset(prefix)
    fast = build_fast_dataset(prefix, decode_in_collate=True)
    variants = dict(a=(dataset, None, None), b=(load_only, None, None),
                    p=(per_sample, fast_collate(), None), f=(fast, fast_collate('cpu'), None))
    if args.device_decode:
        variants['g'] = (fast, fast_collate('device'), device_decoder(args.device_decode))
    variants['c'] = (raw, None, None)
    runs = {}
    fns = {(v, w): (lambda v=v, w=w: runs.setdefault((v, w), []).append(images_per_s(
        make_loader(variants[v][0], w, args.batch_size, collate=variants[v][1]),
        args.num_samples, consume=variants[v][2]))) for w in args.workers for v in variants}
    load_before = os.getloadavg()[0]
    round_robin(fns, args.repeats, 0)
    load_after = os.getloadavg()[0]
    rows = [(w, *(median(runs[(v, w)]) for v in variants)) for w in args.workers]

    print(f'\nRecordIO data path: {prefix}.rec  ({n} records, '
          f'{osp.getsize(prefix + ".rec") / 2**20:.1f} MiB, mean JPEG {mean_bytes / 1024:.1f} '
          f'KiB, {dataset.num_classes} ids, {os.cpu_count()} CPUs, warm page cache)')
    print(f'data list (open .idx + header scan, no decode): {scan_s * 1e3:.0f} ms = '
          f'{scan_s / n * 1e4 * 1e3:.1f} ms per 10k records (header scan alone '
          f'{scan_only_s / n * 1e4 * 1e3:.1f} ms per 10k)')
    print(f'reader (seek+read+header parse): {read_us:.1f} us/record; raw cv2.imdecode: '
          f'{decode_us:.1f} us/record; reader = {100 * read_us / decode_us:.1f} % of decode '
          '(target <= 10 %)')
    print('\n(a) MXFaceDataset + LoadFaceImage + RandomFlip + PackFaceInputs, pseudo_collate; '
          '(b) MXFaceDataset + LoadFaceImage only, pseudo_collate; (p) fast path, per-sample '
          'decode: MXFaceDataset + LoadFaceImage + PackFaceArrays, '
          'face_batch_collate(flip_prob=0.5); (f) fast path, decode in the collate: '
          "MXFaceDataset + PackFaceArrays(size=112), face_batch_collate(flip_prob=0.5, "
          "decode='cpu'); "
          + (f"(g) device decode on {args.device_decode}: MXFaceDataset + PackFaceArrays("
             "size=112), face_batch_collate(flip_prob=0.5, decode='device') + "
             'FaceDataPreprocessor.decode_jpeg; ' if args.device_decode else '')
          + '(c) raw cv2.imdecode of in-memory payloads; all through a '
          'DataLoader (0 workers = '
          f'in-process), batch {args.batch_size}, shuffled; median of {args.repeats} '
          f'interleaved rounds; 1-min load average {load_before:.1f} before, '
          f'{load_after:.1f} after')
    names = [v for v in variants if v != 'c']
    print('| workers | ' + ' | '.join(f'({v}) img/s' for v in [*names, 'c']) + ' | '
          + ' | '.join(f'{v}/c' for v in names) + ' |')
    print('|---:|' + '---:|' * (2 * len(names) + 1))
    for w, *rates, base in rows:
        print(f'| {w} | ' + ' | '.join(f'{r:.0f}' for r in (*rates, base)) + ' | '
              + ' | '.join(f'{r / base:.2f}' for r in rates) + ' |')

    if args.no_rss:
        return
    small, large = args.rss_sizes or ([n, 4 * n] if args.make_synthetic else [5000, 20000])
    # same records with 4x the bytes (224 px), then 4x the records: only the index grows
    with tempfile.TemporaryDirectory() as tmp:
        probes = []
        for size, side in ((small, 112), (small, 224), (large, 112)):
            p = osp.join(tmp, f's{size}_{side}', 'train')
            make_synthetic(p, size, side=side)
            probes.append((side, _run_probe(p)))
    print('\nPeak RSS of a fresh process that opens the set and reads + decodes every record '
          'once:')
    print('| records | image px | .rec MiB | RSS after imports MiB | peak RSS MiB | growth MiB |')
    print('|---:|---:|---:|---:|---:|---:|')
    for side, r in probes:
        print(f"| {r['records']} | {side} | {r['file_mib']:.0f} | {r['rss_before_mib']:.0f} | "
              f"{r['rss_peak_mib']:.0f} | {r['rss_peak_mib'] - r['rss_before_mib']:.1f} |")


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    if args.rss_probe:
        print(json.dumps(rss_probe(args.rss_probe)))
        return
    if args.rec:
        benchmark(args.rec, args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        prefix = osp.join(tmp, 'train')
        t0 = time.perf_counter()
        make_synthetic(prefix, args.make_synthetic)
        print(f'wrote {args.make_synthetic} synthetic records in '
              f'{time.perf_counter() - t0:.1f} s')
        benchmark(prefix, args)


if __name__ == '__main__':
    from coupleface.utils.cli import run_cli
    sys.exit(run_cli(main))

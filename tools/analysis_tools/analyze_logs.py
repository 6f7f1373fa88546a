"""Plot loss/metric curves from MMEngine JSON logs, or report the time per iteration.

The JSON log of a run is ``<work_dir>/<timestamp>/vis_data/<timestamp>.json``; a work dir
may be given instead (its newest log is read). Like mmpretrain's ``analyze_logs.py``.

Examples:
    python tools/analysis_tools/analyze_logs.py plot_curve work_dirs/fcd \\
        --keys loss_cls loss_fcd --out fcd_losses.png
    python tools/analysis_tools/analyze_logs.py plot_curve a.json b.json --keys \\
        synth_val/accuracy --legend student fcd --out val.png
    python tools/analysis_tools/analyze_logs.py plot_curve work_dirs/fcd --list-keys
    python tools/analysis_tools/analyze_logs.py cal_train_time work_dirs/fcd
"""
from __future__ import annotations

import argparse
import glob
import os.path as osp
import sys
from typing import List, Optional


def find_log(path: str) -> str:
    """A ``.json`` log itself, or the newest one under a work dir."""
    if osp.isfile(path):
        return path
    if not osp.isdir(path):
        raise FileNotFoundError(f'{path}: neither a JSON log nor a work dir')
    logs = glob.glob(osp.join(path, '*', 'vis_data', '*.json'))
    logs = [p for p in logs if osp.basename(p) != 'scalars.json']
    if not logs:
        raise FileNotFoundError(f'{path}: no <timestamp>/vis_data/<timestamp>.json log in it')
    return max(logs, key=osp.getmtime)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = p.add_subparsers(dest='task', required=True)
    plot = sub.add_parser('plot_curve', help='curves of some keys to a PNG')
    plot.add_argument('logs', nargs='+', help='JSON logs or work dirs')
    plot.add_argument('--keys', nargs='+', default=['loss'],
                      help='train keys (loss, loss_cls, lr, gnorm_fcd, ...) or val metrics '
                      '(e.g. synth_val/accuracy)')
    plot.add_argument('--legend', nargs='+', help='one label per log (default: file names)')
    plot.add_argument('--title')
    plot.add_argument('--out', default='curves.png', help='PNG path')
    plot.add_argument('--list-keys', action='store_true', help='print the keys and stop')
    time_p = sub.add_parser('cal_train_time', help='seconds per iteration of each log')
    time_p.add_argument('logs', nargs='+', help='JSON logs or work dirs')
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    from coupleface.visualization import (
        available_keys,
        load_json_log,
        plot_curves,
        save_figure,
        train_time,
    )

    args = parse_args(argv)
    paths = [find_log(p) for p in args.logs]
    if args.task == 'cal_train_time':
        for path in paths:
            t = train_time(path)
            print(f'{path}: {t["mean"]:.4f} s/iter (slowest {t["max"]:.4f}, fastest '
                  f'{t["min"]:.4f}, {t["n"]} logged lines)')
        return
    logs = [load_json_log(p) for p in paths]
    if args.list_keys:
        for path, log in zip(paths, logs):
            print(f'{path}: {" ".join(available_keys(log))}')
        return
    legends = args.legend or [osp.basename(osp.dirname(osp.dirname(osp.dirname(p))))
                              or osp.basename(p) for p in paths]
    fig = plot_curves(logs, args.keys, legends=legends, title=args.title)
    print(f'curves of {", ".join(args.keys)} written to {save_figure(fig, args.out)}')


if __name__ == '__main__':
    from coupleface.utils.cli import run_cli

    sys.exit(run_cli(main))

"""Evaluate a coupleface checkpoint on the config's test set(s) and print the metrics.

With ``--out-dir`` and a ``VerificationMetric`` test evaluator, a report is written there
(:mod:`coupleface.evaluation.report`): ``metrics.json`` (every figure, the ROC points and
score histograms; the single source of the rest), ``metrics.md`` (a table of the sets) and
``roc_<set>.png`` / ``scores_<set>.png`` per set. With another evaluator, ``metrics.json``
holds the flat metrics only.

The model may also be an ``.onnx`` file (``OnnxRecognizer`` under onnxruntime) or, with
``--network`` (``r50``, ``mbf``...), a bare arcface_torch ``backbone.pth`` whatever model the
config names: the config then gives only the test sets, the pipeline and the evaluator (see
``use_model_source``), so the same metrics run on it.

Progress: MMEngine's ``LoggerHook`` logs ``Epoch(test) [i/N]  eta ... time ...`` (seconds
per batch) every ``interval`` batches; for this run the interval is lowered so that about 20
such lines cover the test set (``--log-interval`` sets it).

Examples:
    python tools/test.py CONFIG work_dirs/x/epoch_8.pth
    python tools/test.py CONFIG CKPT --out-dir results/  # metrics.json, metrics.md, PNGs
    python tools/test.py CONFIG CKPT --mask-protocols clean masked_unmasked  # + masked pairs
    python tools/test.py CONFIG w600k_r50.onnx          # an ONNX model on the config's sets
    python tools/test.py CONFIG backbone.pth --network r50   # a bare arcface_torch backbone
    python tools/analysis_tools/compare_results.py results_t/ results_s/ \
        --labels teacher student --out compare/
"""
from __future__ import annotations

import argparse
import json
import math
import os
import os.path as osp
import sys

from mmengine.config import DictAction


def parse_args(argv=None) -> argparse.Namespace:
    from coupleface.utils.cli import add_model_arguments

    parser = argparse.ArgumentParser(description='Test (evaluate) a coupleface model')
    add_model_arguments(parser, config_required=True)
    parser.add_argument('--work-dir', help='directory for the evaluation logs')
    parser.add_argument('--out-dir',
                        help='write metrics.json, metrics.md and ROC / score PNGs here')
    parser.add_argument('--no-plots', action='store_true',
                        help='with --out-dir: write metrics.json and metrics.md only')
    parser.add_argument('--log-interval', type=int, default=None,
                        help='log test progress every N batches (default: about 20 lines '
                             'per run, at most the config\'s logger interval)')
    parser.add_argument('--mask-protocols', nargs='+', metavar='PROTOCOL',
                        help='evaluate the test pair sets under these masked-face protocols '
                             '(e.g. clean masked_unmasked): sets the test dataset\'s '
                             '`protocols` and adds ProtocolMask after LoadFaceImage')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, xxx=yyy (mmengine syntax)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if args.log_interval is not None and args.log_interval < 1:
        parser.error(f'--log-interval must be >= 1, got {args.log_interval}')
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def format_metrics(metrics: dict) -> str:
    """One line per metric, aligned, for people to read."""
    width = max((len(k) for k in metrics), default=0)
    lines = []
    for key, value in metrics.items():
        val = f'{value:.4f}' if isinstance(value, float) else str(value)
        lines.append(f'{key:<{width}}  {val}')
    return '\n'.join(lines)


def apply_mask_protocols(cfg, protocols) -> None:
    """Evaluate ``cfg``'s test pair sets under ``protocols`` (ICCV21-MFR style).

    Sets ``test_dataloader.dataset.protocols`` and, when a masked protocol is asked for and
    the pipeline has no ``ProtocolMask``, inserts one right after ``LoadFaceImage`` (the
    masks are drawn on the decoded, aligned face), so any recognizer config can be
    evaluated on masked pairs without a second config.
    """
    from coupleface.datasets.mask_protocols import MASK_PROTOCOLS

    unknown = [p for p in protocols if p not in MASK_PROTOCOLS]
    if unknown:
        raise SystemExit(f'error: --mask-protocols: unknown protocol(s) {unknown}; '
                         f'known: {list(MASK_PROTOCOLS)}')
    ds = cfg.get('test_dataloader', {}).get('dataset', {})
    if ds.get('type') != 'VerificationBinDataset':
        raise SystemExit('error: --mask-protocols needs test_dataloader.dataset of type '
                         f'VerificationBinDataset, the config has {ds.get("type")!r}')
    ds['protocols'] = tuple(protocols)
    pipeline = list(ds.get('pipeline', []))
    types = [t.get('type') for t in pipeline]
    if any(p != 'clean' for p in protocols) and 'ProtocolMask' not in types:
        if 'LoadFaceImage' not in types:
            raise SystemExit('error: --mask-protocols: the test pipeline has no '
                             'LoadFaceImage to insert ProtocolMask after')
        pipeline.insert(types.index('LoadFaceImage') + 1, dict(type='ProtocolMask', seed=0))
    ds['pipeline'] = pipeline


def set_progress_interval(runner, interval=None, lines: int = 20):
    """Make the LoggerHook report test progress about ``lines`` times over the test set.

    MMEngine's ``LoggerHook`` logs test batches every ``interval`` (shared with training);
    a config's training interval (e.g. 50) can exceed the number of test batches, which would
    leave a long embedding extraction silent.

    Returns:
        int | None: the interval set, or None when there is no LoggerHook.
    """
    from mmengine.hooks import LoggerHook
    hooks = [h for h in runner.hooks if isinstance(h, LoggerHook)]
    if not hooks or runner.test_loop is None:
        return None
    if interval is None:
        num_batches = len(runner.test_loop.dataloader)
        interval = min(hooks[0].interval, max(1, math.ceil(num_batches / lines)))
    for hook in hooks:
        hook.interval = int(interval)
    return int(interval)


def find_verification_metric(runner):
    """The test evaluator's ``VerificationMetric``, or None."""
    from coupleface.evaluation.metrics import VerificationMetric
    if runner.test_loop is None:
        return None
    for metric in runner.test_loop.evaluator.metrics:
        if isinstance(metric, VerificationMetric):
            return metric
    return None


def write_outputs(out_dir: str, metrics: dict, metric=None, plots: bool = True,
                  meta=None) -> dict:
    """Write the report (or, without a VerificationMetric, the flat metrics) to ``out_dir``.

    Returns:
        dict[str, str]: the files written.
    """
    os.makedirs(out_dir, exist_ok=True)
    if metric is None or not metric.last_scores:
        path = osp.join(out_dir, 'metrics.json')
        with open(path, 'w') as f:
            json.dump({k: float(v) if isinstance(v, (int, float)) else v
                       for k, v in metrics.items()}, f, indent=2)
        return {'json': path}
    from coupleface.evaluation.report import REPORT_FARS, build_report, write_report
    report = build_report(metrics, metric.last_scores, fars=REPORT_FARS + metric.fars,
                          mfr_far=metric.mfr_far, prefix=metric.prefix, meta=meta)
    return write_report(out_dir, report, plots=plots)


def use_model_source(cfg, checkpoint: str, network=None, input_size=None) -> bool:
    """Put an ``.onnx`` model or a ``--network`` backbone in place of the config's model.

    The config still gives the test sets, pipeline (its input size) and evaluator; the model
    is :func:`coupleface.apis.model_source.source_model_config` of the file (an
    ``OnnxRecognizer``, or a ``FaceRecognizer`` around the backbone the weights hold) with the
    config's ``flip_test`` and data preprocessor.

    Returns:
        bool: Whether the model was replaced (the ONNX graph needs no checkpoint loading).
    """
    from coupleface.apis.model_loading import configured_input_size, recognizer_model_config
    from coupleface.apis.model_source import is_onnx, source_model_config

    if not is_onnx(checkpoint) and network is None:
        return False
    recognizer = recognizer_model_config(cfg)
    model = source_model_config(checkpoint, network, input_size or configured_input_size(cfg),
                                flip_test=bool(recognizer.get('flip_test', False)))
    if recognizer.get('data_preprocessor') is not None:
        model['data_preprocessor'] = recognizer['data_preprocessor']
    cfg.model = model
    return True


def load_for_test(model, checkpoint: str) -> None:
    """Load a recognizer, distiller or insightface backbone checkpoint strictly.

    With a distiller config the checkpoint goes into its student (the model that is
    evaluated); ``student.*`` keys of a distiller checkpoint map onto a recognizer.
    """
    from mmengine.model import is_model_wrapper

    from coupleface.apis.model_loading import load_recognizer_checkpoint

    model = model.module if is_model_wrapper(model) else model
    load_recognizer_checkpoint(getattr(model, 'student', model), checkpoint)


def main(argv=None) -> dict:
    args = parse_args(argv)
    from mmengine.config import Config
    from mmengine.runner import Runner

    import coupleface  # noqa: F401
    from coupleface.engine.launch import setup_cpu_distributed, teardown_distributed
    from coupleface.registry import RUNNERS
    from coupleface.setup_env import register_all_modules
    from coupleface.utils import resolve_config_path

    register_all_modules(init_default_scope=False)
    if not osp.isfile(args.checkpoint):
        raise SystemExit(f'error: checkpoint not found: {args.checkpoint}')
    try:
        cfg = Config.fromfile(resolve_config_path(args.config))
    except FileNotFoundError as e:
        raise SystemExit(f'error: {e}')
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.mask_protocols:
        apply_mask_protocols(cfg, args.mask_protocols)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    # Loaded strictly below, not through MMEngine's non-strict load_from: a checkpoint of
    # another architecture must fail, not evaluate random weights with a warning.
    cfg.load_from = None
    cfg.resume = False
    replaced = use_model_source(cfg, args.checkpoint, args.network, args.input_size)

    setup_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    if not (replaced and args.checkpoint.lower().endswith('.onnx')):
        load_for_test(runner.model, args.checkpoint)
    set_progress_interval(runner, args.log_interval)
    metric = find_verification_metric(runner) if args.out_dir else None
    if metric is not None:
        metric.keep_scores = True  # the report needs each set's pair scores
    metrics = runner.test()
    if runner.rank == 0:
        print(format_metrics(metrics), flush=True)
        if args.out_dir:
            written = write_outputs(args.out_dir, metrics, metric, plots=not args.no_plots,
                                    meta=dict(config=args.config, checkpoint=args.checkpoint))
            print(f'wrote {len(written)} files to {args.out_dir}: '
                  + ', '.join(sorted(osp.basename(p) for p in written.values())), flush=True)
    teardown_distributed()
    return metrics


if __name__ == '__main__':
    from coupleface.utils.cli import run_cli
    sys.exit(run_cli(main))

"""Section ``students``: parameters, FLOPs (``mmengine.analysis``) and ONNX Runtime latency
at batch 1 on CPU of the student backbones (MobileFaceNet, IResNet-18/50/100 by default)."""
from __future__ import annotations

import argparse
import gc
import os.path as osp

from coupleface.utils.benchmarking import MiB, emit, md_table, median, plural, round_robin

from .common import backbone_config, calibrate_bn, pretty_name


def bench_students(args: argparse.Namespace, tmp: str) -> dict:
    """Parameters, FLOPs and ONNX Runtime latency (batch 1, CPU) of each model.

    Args:
        args: The options of ``tools/analysis_tools/benchmark.py``.
        tmp: A scratch folder (the ONNX files).

    Returns:
        dict: per model its parameters, FLOPs, ONNX size, latency and latency ratio.
    """
    import numpy as np
    import onnxruntime as ort
    import torch
    from mmengine.analysis import get_model_complexity_info
    from mmengine.logging import MMLogger

    from coupleface.registry import MODELS
    from coupleface.setup_env import register_all_modules
    from coupleface.utils.onnx_export import export_onnx

    register_all_modules(init_default_scope=False)
    size = args.img_size
    logger = MMLogger.get_current_instance()
    sessions, info = {}, {}
    for name in args.students:
        torch.manual_seed(args.seed)
        model = MODELS.build(dict(type='FaceRecognizer',
                                  backbone=backbone_config(name, size))).eval()
        calibrate_bn(model, size)
        params = sum(p.numel() for p in model.parameters())
        level = logger.level
        logger.setLevel('ERROR')  # "unsupported operator" notes for prelu / bn / add
        try:
            flops = get_model_complexity_info(model.backbone, input_shape=(3, size, size),
                                              show_table=False, show_arch=False)['flops']
        finally:
            logger.setLevel(level)
        path = export_onnx(model, osp.join(tmp, 'onnx', f'{name}.onnx'), size)
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        sessions[name] = ort.InferenceSession(path, options,
                                              providers=['CPUExecutionProvider'])
        info[name] = dict(params=params, flops=flops, onnx_mib=osp.getsize(path) / MiB)
        del model
        gc.collect()
    x = np.random.default_rng(args.seed).uniform(-1, 1, (1, 3, size, size)).astype(np.float32)
    runs = args.latency_runs

    def runner(session):
        feed = {session.get_inputs()[0].name: x}
        return lambda: [session.run(None, feed) for _ in range(runs)]

    for session in sessions.values():  # warm-up outside the rounds
        for _ in range(3):
            session.run(None, {session.get_inputs()[0].name: x})
    times = round_robin({n: runner(s) for n, s in sessions.items()}, args.repeats, 0)
    first = args.students[0]
    base = median(times[first]) / runs
    rows, result = [], dict(img_size=size, threads=args.threads, models={})
    for name in args.students:
        ms = median(times[name]) / runs * 1e3
        entry = dict(info[name], latency_ms=ms, ratio=ms / 1e3 / base,
                     rounds_s=times[name], runs_per_round=runs)
        result['models'][name] = entry
        rows.append([pretty_name(name), f'{entry["params"] / 1e6:.2f}',
                     f'{entry["flops"] / 1e9:.2f}', f'{entry["onnx_mib"]:.1f}', f'{ms:.2f}',
                     f'{1e3 / ms:,.0f}', f'{entry["ratio"]:.2f}'])
    notes = [f'{size} px, 512-d embeddings. FLOPs from `mmengine.analysis.'
             'get_model_complexity_info` (it counts one multiply-add as one FLOP, like the '
             'insightface model zoo; PReLU/BN/add not counted). ONNX: '
             '`tools/deployment/pytorch2onnx.py` `export_onnx` (TorchScript exporter, opset 17), '
             f'onnxruntime {ort.__version__} CPUExecutionProvider, '
             f'{plural(args.threads, "intra-op thread")}, batch 1; latency = median over '
             f'{args.repeats} interleaved rounds of '
             f'{runs} runs each, ratio to {pretty_name(first)}.']
    emit('Students', notes, md_table(
        ['model', 'params M', 'GFLOPs', 'ONNX MiB', 'ORT latency ms', 'images/s',
         f'latency ratio to {pretty_name(first)}'], rows))
    return result

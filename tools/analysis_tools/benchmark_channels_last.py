"""Benchmark ``FaceRecognizer(channels_last=True)`` against the contiguous (NCHW) model.

For each backbone (IResNet-18, IResNet-50, MobileFaceNet by default) three models with the
same weights are timed on the same batch, forward + backward of the embeddings (no head,
no optimizer step): (a) contiguous, (a') contiguous again, whose ratio to (a) is the run's
noise floor, and (b) channels-last. Variants are interleaved round-robin, in a new random
order each round, warm-up rounds excluded; medians are reported and the printed ratio is
channels-last / contiguous (below 1: channels-last is faster).

On CUDA every timing is bracketed by ``torch.cuda.synchronize()``, ``cudnn.benchmark`` is
on (so each layout gets its best kernels) and ``--dtype bf16``/``fp16`` runs the model
under autocast, the setting in which NVIDIA recommends channels-last (tensor cores).

Examples:
    OMP_NUM_THREADS=1 python tools/analysis_tools/benchmark_channels_last.py --threads 1
    python tools/analysis_tools/benchmark_channels_last.py --models iresnet18-w16 \
        iresnet18-w32 --size 56 --batch-size 128
    ONEDNN_MAX_CPU_ISA=AVX2 python tools/analysis_tools/benchmark_channels_last.py ...
    python tools/analysis_tools/benchmark_channels_last.py --device cuda --dtype bf16
"""
from __future__ import annotations

import argparse
import os
from typing import Callable, Dict, List

import torch

from coupleface.utils.benchmarking import format_ratio, median, round_robin, spread
from coupleface.utils.cpu_info import describe_cpu

BACKBONES = {
    'iresnet18': dict(type='IResNet', arch=18),
    'iresnet50': dict(type='IResNet', arch=50),
    'mobilefacenet': dict(type='MobileFaceNet', arch='mbf'),
    # the SynthFaces CPU student and teacher (run them with --size 56)
    'iresnet18-w16': dict(type='IResNet', arch=18, base_channels=16, embedding_size=128),
    'iresnet18-w32': dict(type='IResNet', arch=18, base_channels=32, embedding_size=256),
}
VARIANTS = ('contiguous', "contiguous'", 'channels_last')
DTYPES = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='channels-last vs contiguous FaceRecognizer')
    parser.add_argument('--models', nargs='+', default=['iresnet18', 'iresnet50', 'mobilefacenet'],
                        choices=list(BACKBONES))
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--size', type=int, default=112, help='input image size')
    parser.add_argument('--rounds', type=int, default=5, help='timed rounds')
    parser.add_argument('--warmup', type=int, default=1, help='rounds excluded')
    parser.add_argument('--steps', type=int, default=1, help='fwd+bwd steps per timing')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--dtype', default='fp32', choices=list(DTYPES),
                        help='autocast dtype (fp32: no autocast)')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def build_models(name: str, size: int, device: str) -> Dict[str, torch.nn.Module]:
    """The three variants of one backbone, with identical weights, in train mode."""
    from coupleface.models.recognizers import FaceRecognizer

    backbone = dict(BACKBONES[name], input_size=size)
    ref = FaceRecognizer(backbone=dict(backbone))
    state = ref.state_dict()
    models = {}
    for variant in VARIANTS:
        model = FaceRecognizer(backbone=dict(backbone),
                               channels_last=variant == 'channels_last')
        model.load_state_dict(state)
        models[variant] = model.to(device).train()
    return models


def make_step(model: torch.nn.Module, inputs: torch.Tensor, dtype,
              device: str) -> Callable[[], None]:
    device_type = torch.device(device).type

    def step() -> None:
        model.zero_grad(set_to_none=True)
        with torch.autocast(device_type, dtype=dtype, enabled=dtype is not None):
            feats = model.extract_feat(inputs)
        feats.float().pow(2).mean().backward()
    return step


def time_variants(steps: Dict[str, Callable[[], None]], args,
                  device_type: str) -> Dict[str, List[float]]:
    """Seconds per step of each variant, one entry per timed round (interleaved rounds of
    :func:`coupleface.utils.benchmarking.round_robin`, ``--steps`` steps per timing)."""
    def repeat(step: Callable[[], None]) -> Callable[[], None]:
        return lambda: [step() for _ in range(args.steps)]

    times = round_robin({v: repeat(step) for v, step in steps.items()}, args.rounds,
                        args.warmup, device_type, args.seed)
    return {v: [t / args.steps for t in ts] for v, ts in times.items()}


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device_type = torch.device(args.device).type
    cuda = device_type == 'cuda'
    if cuda:
        torch.backends.cudnn.benchmark = True
        hardware = torch.cuda.get_device_name()
    else:
        hardware = f'{describe_cpu()}, {torch.get_num_threads()} thread(s)'
    torch.manual_seed(args.seed)
    inputs = torch.randn(args.batch_size, 3, args.size, args.size, device=args.device)
    print(f'forward+backward of the embeddings, batch {args.batch_size}, {args.size} px, '
          f'{args.dtype} on {args.device} ({hardware}); torch {torch.__version__}; '
          f'{args.warmup} warm-up + {args.rounds} timed rounds of {args.steps} step(s), '
          f'variants interleaved in a new random order each round; medians; '
          f'load average {os.getloadavg()[0]:.1f} at start')
    print()
    print("| model | contiguous ms | channels-last ms | ratio channels-last / contiguous "
          "| noise floor (a') / (a) | spread |")
    print('|---|---:|---:|---:|---:|---:|')
    for name in args.models:
        models = build_models(name, args.size, args.device)
        steps = {v: make_step(m, inputs, DTYPES[args.dtype], args.device)
                 for v, m in models.items()}
        times = time_variants(steps, args, device_type)
        med = {v: median(t) for v, t in times.items()}
        worst = max(spread(t) for t in times.values())
        print(f"| {name} | {1e3 * med['contiguous']:.1f} | {1e3 * med['channels_last']:.1f} "
              f"| {format_ratio(med['channels_last'], med['contiguous'])} "
              f"| {format_ratio(med[VARIANTS[1]], med['contiguous'])} | {100 * worst:.0f}% |",
              flush=True)
        del models, steps
        if cuda:
            torch.cuda.empty_cache()
    print()
    print(f'load average {os.getloadavg()[0]:.1f} at end')


if __name__ == '__main__':
    main()

"""Section ``step``: train-step time of the student alone and of the distillation variants.

(a) the student alone, (b) student + online teacher with FCD, (c) CoupleFace online
(FCD + RAD), (d) CoupleFace with a TeacherBank (written to a temporary folder first),
(e) (d) with mined partner images appended to the batch, as ratios to (a), with (a') a
second copy of (a) whose ratio is the run's noise floor, plus the cost of the bank lookup,
of FCD + RAD and of the data preprocessor alone, timed in the same interleaved rounds.
"""
from __future__ import annotations

import argparse
import gc
import os.path as osp
from typing import Dict, List

from coupleface.utils import benchmarking as bm

from .common import EMBED_DIM, backbone_config, calibrate_bn, group_labels, pretty_name

BANK_TARGET = 1.15  # bank variant <= 1.15x the student alone


def _make_batches(num: int, batch: int, size: int, num_classes: int, bank_samples: int,
                  seed: int) -> List[dict]:
    """Batches as the data loader gives them: uint8 BGR CHW images and data samples."""
    import torch
    from mmpretrain.structures import DataSample

    gen = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(num):
        labels = group_labels(batch, num_classes, gen)
        idx = torch.randint(0, bank_samples, (batch, ), generator=gen)
        flip = torch.rand(batch, generator=gen) < 0.5
        images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=gen)
        samples = []
        for i in range(batch):
            ds = DataSample().set_gt_label(int(labels[i]))
            ds.set_metainfo(dict(sample_idx=int(idx[i]), flip=bool(flip[i]), masked=False))
            samples.append(ds)
        batches.append(dict(inputs=list(images), data_samples=samples))
    return batches


def _train_step_fn(model, batches: List[dict], device: str, dtype: str):
    import torch

    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01,
                                momentum=0.9, weight_decay=5e-4)
    state = dict(i=0)

    def step() -> None:
        batch = batches[state['i'] % len(batches)]
        state['i'] += 1
        with bm.autocast(device, dtype):
            data = model.data_preprocessor(batch, True)
            losses = model(**data, mode='loss')
        loss, _ = model.parse_losses(losses)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def bench_step(args: argparse.Namespace, tmp: str) -> dict:
    """Time the train-step variants; print the section, return its figures.

    Args:
        args: The options of ``tools/analysis_tools/benchmark.py``.
        tmp: A scratch folder (teacher checkpoint and bank).

    Returns:
        dict: ``config``, ``variants`` (median, ratios, spread per variant),
        ``components``, ``bank_ratio``, ``noise_floor_ratio`` and the targets.
    """
    import numpy as np
    import torch

    from coupleface.models.distillers.teacher_bank import TeacherBank, write_teacher_bank
    from coupleface.registry import MODELS
    from coupleface.setup_env import register_all_modules

    register_all_modules(init_default_scope=False)
    size, batch, device = args.img_size, args.batch_size, args.device
    student = dict(type='FaceRecognizer',
                   backbone=backbone_config(args.student, size, with_cp=args.with_cp),
                   head=dict(type='ArcFaceHead', num_classes=args.num_classes,
                             in_channels=EMBED_DIM, scale=64.0, margin=0.5))
    teacher_model = dict(type='FaceRecognizer', backbone=backbone_config(args.teacher, size))

    # A random-weight teacher checkpoint (BN calibrated) and a random teacher bank.
    torch.manual_seed(args.seed)
    teacher = calibrate_bn(MODELS.build(teacher_model), size)
    teacher_ckpt = osp.join(tmp, 'teacher.pth')
    torch.save(dict(state_dict=teacher.state_dict()), teacher_ckpt)
    del teacher
    bank_prefix = osp.join(tmp, 'bank', 'train')
    rng = np.random.default_rng(args.seed)
    chunk = 8192
    write_teacher_bank(
        bank_prefix, (rng.standard_normal((min(chunk, args.bank_samples - a), 2, EMBED_DIM),
                                          dtype=np.float32)
                      for a in range(0, args.bank_samples, chunk)),
        meta=dict(dataset='benchmark'), num_samples=args.bank_samples)

    fcd = dict(type='FeatureConsistencyLoss', mode='l2', loss_weight=1.0)
    # the default RAD: the student's own relations, KL form (the cross form costs the same)
    rad = dict(type='RelationAwareDistillationLoss', num_negatives=16, loss_weight=1.0)
    online = dict(model=teacher_model, checkpoint=teacher_ckpt)
    partners = args.partner_samples
    variants = {
        '(a) student alone': dict(student),
        "(a') student alone, second copy (noise floor)": dict(student),
        '(b) + online teacher, FCD': dict(type='CoupleFaceDistiller', student=student,
                                          teacher=online, fcd_loss=fcd),
        '(c) CoupleFace online (FCD + RAD)': dict(type='CoupleFaceDistiller',
                                                  student=student, teacher=online,
                                                  fcd_loss=fcd, rad_loss=rad),
        '(d) CoupleFace, teacher bank': dict(type='CoupleFaceDistiller', student=student,
                                             teacher_bank=dict(path=bank_prefix),
                                             fcd_loss=fcd, rad_loss=rad),
    }
    partner_name = f'(e) CoupleFace, teacher bank, + {partners} partner images'
    if partners:  # the MS1M configs' variant: ArcFace on the batch, FCD + RAD on all
        variants[partner_name] = dict(type='CoupleFaceDistiller', student=student,
                                      teacher_bank=dict(path=bank_prefix), fcd_loss=fcd,
                                      rad_loss=rad, partner_samples=partners)
    batches = _make_batches(4, batch, size, args.num_classes, args.bank_samples, args.seed)
    with_partners = _make_batches(4, batch + partners, size, args.num_classes,
                                  args.bank_samples, args.seed) if partners else batches
    fns, models = {}, {}
    for name, cfg in variants.items():
        torch.manual_seed(args.seed)  # the same student initialisation in every variant
        model = MODELS.build(cfg).to(device).train()
        models[name] = model
        fns[name] = _train_step_fn(model, with_partners if name == partner_name else batches,
                                   device, args.dtype)

    # Components of the bank variant's extra work, timed in the same rounds.
    bank = TeacherBank(bank_prefix)
    idx = torch.tensor([int(ds.sample_idx) for ds in batches[0]['data_samples']])
    flip = torch.tensor([bool(ds.flip) for ds in batches[0]['data_samples']])
    labels = torch.cat([ds.gt_label for ds in batches[0]['data_samples']]).to(device)
    fcd_loss, rad_loss = MODELS.build(fcd).to(device), MODELS.build(rad).to(device)
    emb = torch.randn(batch, EMBED_DIM, device=device, requires_grad=True)
    pre = models['(a) student alone'].data_preprocessor

    def lookup() -> None:
        bank.lookup(idx, flip).to(device)

    t = bank.lookup(idx, flip).to(device)

    def losses() -> None:
        (fcd_loss(emb, t) + rad_loss(emb, t, labels)).backward()
        emb.grad = None

    def preprocess() -> None:
        pre(batches[0], True)

    comps = {'bank lookup (memmap -> tensor)': lookup, 'FCD + RAD fwd+bwd': losses,
             'data preprocessor': preprocess}
    peak = {}
    if device == 'cuda':
        for name, fn in fns.items():  # peak memory of one step per variant
            with bm.PeakMemory('cuda') as mem:
                fn()
            peak[name] = mem.bytes
    cpu: Dict[str, List[float]] = {}
    times = bm.round_robin({**fns, **comps}, args.repeats, args.warmup, device, args.seed, cpu)
    base = bm.median(times['(a) student alone'])
    base_min = min(times['(a) student alone'])
    base_cpu = bm.median(cpu['(a) student alone'])
    rows, result = [], dict(config=dict(
        student=args.student, teacher=args.teacher, batch=batch, img_size=size,
        num_classes=args.num_classes, dtype=args.dtype, device=device,
        bank_samples=args.bank_samples, repeats=args.repeats, warmup=args.warmup),
        variants={}, components={})
    for name in fns:
        med = bm.median(times[name])
        entry = dict(median_s=med, times_s=times[name], ratio=med / base,
                     ratio_min=min(times[name]) / base_min,
                     cpu_s=bm.median(cpu[name]), cpu_ratio=bm.median(cpu[name]) / base_cpu,
                     images_per_s=batch / med, spread=bm.spread(times[name]))
        if name in peak:
            entry['peak_mib'] = peak[name] / bm.MiB
        result['variants'][name] = entry
        row = [name, f'{med:.3f}', f'{batch / med:,.1f}', f'{med / base:.3f}',
               f'{entry["ratio_min"]:.3f}', f'{entry["cpu_ratio"]:.3f}',
               f'{entry["spread"]:.0%}']
        if device == 'cuda':
            row.append(bm.mib(peak[name]))
        rows.append(row)
    headers = ['variant', 's/step (median)', 'images/s', 'ratio to (a)', 'ratio of minima',
               'CPU-time ratio', 'spread']
    if device == 'cuda':
        headers.append('peak MiB')
    bank_ratio = result['variants']['(d) CoupleFace, teacher bank']['ratio']
    result['bank_ratio'] = bank_ratio
    result['noise_floor_ratio'] = result['variants'][
        "(a') student alone, second copy (noise floor)"]['ratio']
    result['bank_target'] = BANK_TARGET
    result['bank_target_met'] = bank_ratio <= BANK_TARGET
    if partners:
        result['partner_ratio'] = result['variants'][partner_name]['ratio']
        result['partner_target_met'] = result['partner_ratio'] <= BANK_TARGET
    comp_rows = []
    for name in comps:
        med = bm.median(times[name])
        result['components'][name] = dict(median_s=med, times_s=times[name],
                                          fraction_of_a=med / base)
        comp_rows.append([name, f'{med * 1e3:.2f}', f'{100 * med / base:.2f} %'])
    notes = [
        f'{pretty_name(args.teacher)} teacher -> {pretty_name(args.student)} student, '
        f'batch {batch}, '
        f'{size} px, ArcFace head over {args.num_classes:,} classes (a 1,000-class head, not '
        f'MS1M\'s 85,742), SGD (momentum 0.9) step included, {args.dtype} on {device}, '
        f'{bm.plural(args.threads)}. {args.warmup} warm-up round(s) excluded, '
        f'{args.repeats} timed rounds, variants interleaved, in a new random order each round; '
        'medians. "ratio of minima": fastest round over fastest round of (a) (least '
        'disturbed by other jobs); "CPU-time ratio": process CPU time (user + system, all '
        'threads) per step, median, over that of (a); "spread" = (max - min) / median over '
        "the rounds. (a') is (a) again: its ratio is the noise floor of this run.",
        f'Teacher bank: {args.bank_samples:,} rows x 2 views x {EMBED_DIM}-d float16 '
        '(memory-mapped .npy, page cache warm after the warm-up).'
    ]
    verdict = 'met' if result['bank_target_met'] else 'MISSED'
    after = [f'Target: bank variant <= {BANK_TARGET:.2f}x the student alone: {verdict} '
             f'({bank_ratio:.3f}x; noise floor {result["noise_floor_ratio"]:.3f}x).']
    if partners:
        after[-1] += (f' With {partners} partner images per batch of {batch} (the ArcFace '
                      f'head on the {batch}): '
                      f'{"met" if result["partner_target_met"] else "MISSED"} '
                      f'({result["partner_ratio"]:.3f}x).')
    after += ['', 'Where the bank variant\'s extra time goes (same rounds, medians):', '',
              bm.md_table(['component (batch ' + str(batch) + ')', 'ms', 'of (a)'], comp_rows)]
    bm.emit('Train step', notes, bm.md_table(headers, rows), after)
    del models, fns
    gc.collect()
    return result

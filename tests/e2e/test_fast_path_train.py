"""The fast data path trains like the default one: two iterations of a tiny SynthFaces run
give the same losses and weights bit for bit, with the flips drawn per sample
(RandomFaceFlip) or for the whole batch by the collate (flip_prob), also with the decode in
the collate (PackFaceArrays(size) + decode='cpu'), and a resume from the
first iteration's checkpoint ends with the uninterrupted run's weights (ExactResumeHook,
ResumableSampler, the augmentation seed restored for the collate's flips)."""
import os.path as osp
import uuid

import pytest
import torch
from _e2e_helpers import write_tiny_config
from mmengine.config import Config
from mmengine.runner import Runner

from coupleface.setup_env import register_all_modules

FAST = '''
tr = {pipeline}
train_dataloader = dict(batch_size=16, num_workers=0, persistent_workers=False, {collate}
                        dataset=dict(data_root='{root}', pipeline=tr))
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None
default_hooks = dict(checkpoint=dict(interval=1, by_epoch=False, max_keep_ckpts=-1))
'''


def _run(root, work_dir, fast, resume_from=None, batch_flip=False, collate_decode=False):
    register_all_modules()
    collate = "collate_fn=dict(type='face_batch_collate'{}{}), ".format(
        ', flip_prob=0.5' if batch_flip else '', ", decode='cpu'" if collate_decode else '')
    flip = '' if batch_flip else "dict(type='RandomFaceFlip', prob=0.5), "
    pack = 'PackFaceArrays' if fast else 'PackFaceInputs'
    pipeline = f"[dict(type='LoadFaceImage', size=size), {flip}dict(type='{pack}')]"
    if collate_decode:  # the collate decodes, resizes and flips
        pipeline = "[dict(type='PackFaceArrays', size=size)]"
    extra = FAST.format(pipeline=pipeline, collate=collate if fast else '', root=root)
    path = write_tiny_config(osp.join(str(work_dir) + '.py'), root, extra=extra)
    cfg = Config.fromfile(path)
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = f'fast_{uuid.uuid4().hex[:8]}'
    if resume_from is not None:
        cfg.resume, cfg.load_from = True, str(resume_from)
    runner = Runner.from_cfg(cfg)
    runner.train()
    losses = list(runner.message_hub.get_scalar('train/loss').data[0])
    state = {k: v.clone() for k, v in runner.model.state_dict().items()}
    return losses, state, runner.iter


@pytest.mark.slow
def test_fast_path_trains_and_resumes_like_the_default(tiny_synthfaces, tmp_path):
    old_losses, old_state, iters = _run(tiny_synthfaces, tmp_path / 'old', fast=False)
    new_losses, new_state, _ = _run(tiny_synthfaces, tmp_path / 'new', fast=True)
    assert iters == 2 and len(old_losses) == 2
    assert new_losses == old_losses
    assert all(torch.equal(old_state[k], new_state[k]) for k in old_state)
    batch_losses, batch_state, _ = _run(tiny_synthfaces, tmp_path / 'batch', fast=True,
                                        batch_flip=True)
    assert batch_losses == old_losses
    assert all(torch.equal(old_state[k], batch_state[k]) for k in old_state)
    decode_losses, decode_state, _ = _run(tiny_synthfaces, tmp_path / 'decode', fast=True,
                                          batch_flip=True, collate_decode=True)
    assert decode_losses == old_losses
    assert all(torch.equal(old_state[k], decode_state[k]) for k in old_state)
    resumed_losses, resumed, _ = _run(tiny_synthfaces, tmp_path / 'resumed', fast=True,
                                      resume_from=tmp_path / 'batch' / 'iter_1.pth',
                                      batch_flip=True)
    assert resumed_losses[-1] == new_losses[-1]
    assert all(torch.equal(new_state[k], resumed[k]) for k in new_state)
    resumed_losses, resumed, _ = _run(tiny_synthfaces, tmp_path / 'resumed_decode', fast=True,
                                      resume_from=tmp_path / 'decode' / 'iter_1.pth',
                                      batch_flip=True, collate_decode=True)
    assert resumed_losses[-1] == new_losses[-1]
    assert all(torch.equal(new_state[k], resumed[k]) for k in new_state)

"""Train a narrow channels-last student from a shipped config for a few steps (subprocess).

Run by ``test_channels_last_guard.py``: ``python _narrow_channels_last_worker.py CONFIG
STEPS BASE_CHANNELS BATCH [--no-guard]``. ``--no-guard`` switches the narrow-convolution
guard off to show that the crash it prevents is real. Prints ``trained N steps`` on success.
"""
import sys

import torch
from mmengine.config import Config
from mmpretrain.structures import DataSample

import coupleface.models.recognizers.memory_format as memory_format
from coupleface.registry import MODELS
from coupleface.setup_env import register_all_modules


def main() -> None:
    config, steps = sys.argv[1], int(sys.argv[2])
    base_channels, batch = int(sys.argv[3]), int(sys.argv[4])
    if '--no-guard' in sys.argv:
        memory_format.MIN_CHANNELS_LAST_IN_CHANNELS = 0
    register_all_modules()
    cfg = Config.fromfile(config)
    cfg.merge_from_dict({'model.backbone.base_channels': base_channels,
                         'model.head.num_classes': 10})
    assert cfg.model.channels_last, 'the config must turn channels_last on'
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).train()
    optim = torch.optim.SGD(model.parameters(), lr=0.01)
    size = cfg.model.backbone.input_size
    for _ in range(steps):
        inputs = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8)
        samples = [DataSample().set_gt_label(i % 10) for i in range(batch)]
        data = model.data_preprocessor(dict(inputs=inputs, data_samples=samples), True)
        losses = model(**data, mode='loss')
        optim.zero_grad()
        sum(v for k, v in losses.items() if 'loss' in k).backward()
        optim.step()
    print(f'trained {steps} steps')


if __name__ == '__main__':
    main()

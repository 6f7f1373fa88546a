"""One backbone training step of every given config's trained model (run in a subprocess).

``python _train_step_worker.py CONFIG...``: builds the recognizer (or a distiller's student)
of each config as shipped, and runs forward + backward + an SGD step on a batch of 4 images
at the config's input size; prints ``ok <config>`` per config. Run by
``test_every_config_train_step.py`` under each oneDNN code path.
"""
import sys

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from coupleface.registry import MODELS
from coupleface.setup_env import register_all_modules


def main() -> None:
    register_all_modules()
    torch.manual_seed(0)
    for path in sys.argv[1:]:
        cfg = Config.fromfile(path)
        model_cfg = cfg.model.student if cfg.model.type == 'CoupleFaceDistiller' else cfg.model
        size = cfg.train_dataloader.dataset.pipeline[0].get('size', 112)
        with DefaultScope.overwrite_default_scope('coupleface'):
            model = MODELS.build(dict(model_cfg, head=None)).train()
        optim = torch.optim.SGD(model.parameters(), lr=0.01)
        inputs = torch.randint(0, 256, (4, 3, size, size), dtype=torch.uint8)
        data = model.data_preprocessor(dict(inputs=inputs), True)
        feats = model.extract_feat(data['inputs'])
        feats.pow(2).mean().backward()
        optim.step()
        assert torch.isfinite(feats).all(), path
        print(f'ok {path}', flush=True)


if __name__ == '__main__':
    main()

"""A tiny trained-looking IResNet-18 (w8, 64-d, 56 px), its checkpoints and ONNX export."""
import os.path as osp

import torch
from torch.nn.modules.batchnorm import _BatchNorm

from coupleface.apis.model_loading import build_recognizer
from coupleface.utils.onnx_export import export_onnx

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: the shared tiny student config (IResNet-18 w8, 64-d, 56 px, flip test)
CONFIG = osp.join(REPO, 'configs', 'arcface', 'iresnet18-w8_1xb128_synthfaces-56px.py')
SIZE = 56


def calibrate_bn(model, size: int = SIZE, seed: int = 0):
    """Realistic BatchNorm statistics (random weights otherwise blow activations up)."""
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    g = torch.Generator().manual_seed(seed)
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model.extract_feat(torch.rand(8, 3, size, size, generator=g) * 2 - 1)
    return model.eval()


def calibrated_model(seed: int = 0):
    """The config's recognizer (with head) with realistic BatchNorm statistics."""
    torch.manual_seed(seed)
    return calibrate_bn(build_recognizer(CONFIG, with_head=True), SIZE, seed)


def write_model_files(tmp_path):
    """``{'model', 'ckpt' (recognizer), 'backbone' (bare insightface keys), 'onnx'}``."""
    model = calibrated_model()
    files = dict(model=model, ckpt=str(tmp_path / 'recognizer.pth'),
                 backbone=str(tmp_path / 'backbone.pth'), onnx=str(tmp_path / 'model.onnx'))
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, files['ckpt'])
    torch.save(model.backbone.state_dict(), files['backbone'])  # arcface_torch's layout
    export_onnx(model, files['onnx'], SIZE)
    return files

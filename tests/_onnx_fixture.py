"""A tiny trained-looking IResNet-18 (w8, 64-d, 56 px), its checkpoints and ONNX export."""
import os.path as osp

import torch

from coupleface.apis.model_loading import build_recognizer
from coupleface.benchmarks.common import calibrate_bn  # noqa: F401  (the tests' one copy)
from coupleface.utils.onnx_export import export_onnx

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: the shared tiny student config (IResNet-18 w8, 64-d, 56 px, flip test)
CONFIG = osp.join(REPO, 'configs', 'arcface', 'iresnet18-w8_1xb128_synthfaces-56px.py')
SIZE = 56


def calibrated_model(seed: int = 0):
    """The config's recognizer (with head) with realistic BatchNorm statistics."""
    torch.manual_seed(seed)
    return calibrate_bn(build_recognizer(CONFIG, with_head=True), SIZE, seed=seed)


def write_model_files(tmp_path):
    """``{'model', 'ckpt' (recognizer), 'backbone' (bare insightface keys), 'onnx'}``."""
    model = calibrated_model()
    files = dict(model=model, ckpt=str(tmp_path / 'recognizer.pth'),
                 backbone=str(tmp_path / 'backbone.pth'), onnx=str(tmp_path / 'model.onnx'))
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, files['ckpt'])
    torch.save(model.backbone.state_dict(), files['backbone'])  # arcface_torch's layout
    export_onnx(model, files['onnx'], SIZE)
    return files

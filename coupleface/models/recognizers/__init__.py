"""Recognizers."""
from .face_recognizer import FaceRecognizer, freeze_batch_norm
from .onnx_recognizer import OnnxRecognizer

__all__ = ['FaceRecognizer', 'OnnxRecognizer', 'freeze_batch_norm']

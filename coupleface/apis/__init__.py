"""coupleface.apis."""
from ..utils.face_alignment import align_face, as_landmarks, estimate_similarity, transform_points
from .calibration import calibrate_threshold, threshold_at_far
from .face_embedder import FaceEmbedder
from .model_loading import build_recognizer, init_recognizer, load_recognizer_checkpoint

__all__ = ['align_face', 'as_landmarks', 'estimate_similarity', 'transform_points']
__all__ += ['FaceEmbedder', 'build_recognizer', 'calibrate_threshold', 'init_recognizer',
            'load_recognizer_checkpoint', 'threshold_at_far']

"""FaceEmbedder: same scores as the evaluation path, checkpoint kinds, alignment, errors."""
import os.path as osp
import sys

import cv2
import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from _onnx_fixture import calibrate_bn  # noqa: E402

from coupleface.apis import FaceEmbedder  # noqa: E402
from coupleface.apis.calibration import threshold_at_far
from coupleface.datasets import VerificationBinDataset
from coupleface.datasets.bin_io import write_bin
from coupleface.datasets.synthfaces.generator import render_identity_image, render_identity_jpeg
from coupleface.datasets.transforms import ImageDecodeError, LoadFaceImage, PackFaceInputs
from coupleface.evaluation.metrics import VerificationMetric
from coupleface.registry import MODELS
from coupleface.utils.checkpoint_state_dict import CheckpointKeyError

SIZE = 64  # the test pipeline resizes the 112 px faces, as the CPU demo configs do
EMB = 32


def _backbone(base=8, emb=EMB):
    return dict(type='IResNet', arch=18, input_size=SIZE, base_channels=base, embedding_size=emb)


def _recognizer(backbone=None, flip_test=True):
    backbone = backbone or _backbone()
    return dict(type='FaceRecognizer', backbone=backbone, flip_test=flip_test,
                head=dict(type='ArcFaceHead', num_classes=4,
                          in_channels=backbone.get('embedding_size', EMB)))


def _config(model):
    pipeline = [dict(type='LoadFaceImage', size=SIZE), dict(type='PackFaceInputs')]
    return dict(model=model, test_dataloader=dict(dataset=dict(
        type='VerificationBinDataset', ann_files=['unused.bin'], pipeline=pipeline)))




def _face(identity, image=0, size=112, **kw):
    return render_identity_image(identity, image, seed=3, size=size, **kw)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A random-weight recognizer, its checkpoint and an embedder."""
    tmp = tmp_path_factory.mktemp('inference')
    torch.manual_seed(0)
    model = calibrate_bn(MODELS.build(_recognizer()), SIZE)
    path = str(tmp / 'recognizer.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {'epoch': 3}}, path)
    embedder = FaceEmbedder(_config(_recognizer()), path)
    return model, path, embedder, tmp


def _eval_path_cosines(model, bin_path):
    """Cosine scores as the test loop computes them: dataset pipeline, predict, metric."""
    dataset = VerificationBinDataset(ann_files=[bin_path],
                                     pipeline=[LoadFaceImage(size=SIZE), PackFaceInputs()])
    metric = VerificationMetric()
    metric.dataset_meta = dataset.metainfo
    model.flip_test = True
    for start in range(0, len(dataset), 8):
        batch = pseudo_collate([dataset[i] for i in range(start, min(start + 8, len(dataset)))])
        with torch.no_grad():
            outputs = model.test_step(batch)
        metric.process(batch, [o.to_dict() for o in outputs])
    results = sorted(metric.results, key=lambda r: r['sample_idx'])
    emb = np.stack([r['embedding'] for r in results]).astype(np.float64)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return np.sum(emb[0::2] * emb[1::2], axis=1)


def test_verify_scores_match_evaluation_path(trained):
    model, _, embedder, tmp = trained
    images, issame = [], []
    for i in range(8):  # 8 genuine pairs, 8 impostor pairs
        images += [render_identity_jpeg(i, 0, seed=3)[0], render_identity_jpeg(i, 1, seed=3)[0]]
        images += [render_identity_jpeg(i, 2, seed=3)[0],
                   render_identity_jpeg(i + 8, 0, seed=3)[0]]
        issame += [True, False]
    bin_path = str(tmp / 'pairs.bin')
    write_bin(bin_path, images, issame)
    reference = _eval_path_cosines(model, bin_path)

    scores = np.array([embedder.verify(images[2 * p], images[2 * p + 1], threshold=0.0)['score']
                       for p in range(len(issame))])
    np.testing.assert_allclose(scores, reference, atol=1e-5, rtol=0)

    cal = embedder.calibrate(bin_path, far=1 / 8)
    np.testing.assert_allclose(cal['scores'], reference, atol=1e-5, rtol=0)
    assert embedder.threshold == cal['threshold'] == threshold_at_far(cal['scores'], issame,
                                                                      1 / 8)
    assert embedder.far == 1 / 8
    issame = np.array(issame)
    # The two paths agree on scores within 1e-5 (above), not to the last bit (other batch
    # sizes, other kernels). The threshold lies between calibration scores, so each pair is
    # farther from it than that and both paths must decide it alike.
    assert np.abs(cal['scores'] - cal['threshold']).min() > 1e-5
    accepted_negatives = 0
    for p in range(len(issame)):
        result = embedder.verify(images[2 * p], images[2 * p + 1])
        assert result['threshold'] == cal['threshold'] and result['far'] == 1 / 8
        assert result['same'] == (result['score'] >= cal['threshold'])
        assert result['same'] == (cal['scores'][p] >= cal['threshold'])
        accepted_negatives += int(result['same'] and not issame[p])
    assert accepted_negatives <= 1  # FAR <= 1/8 of 8 negatives on the calibration pairs
    assert cal['far_actual'] == accepted_negatives / 8

    # the dataset form of the same pairs calibrates identically
    dataset = VerificationBinDataset(ann_files=[bin_path], pipeline=[])
    assert embedder.calibrate(dataset, far=1 / 8)['threshold'] == cal['threshold']


def test_image_forms_batching_resize_and_flip(trained, tmp_path):
    model, path, embedder, _ = trained
    faces = [_face(i) for i in range(3)]
    files = []
    for i, face in enumerate(faces):
        files.append(str(tmp_path / f'{i}.png'))
        cv2.imwrite(files[-1], face)
    ref = embedder.embed(faces)
    assert ref.shape == (3, EMB) and ref.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ref, axis=1), 1, atol=1e-6)
    png = [cv2.imencode('.png', f)[1].tobytes() for f in faces]
    for form in (files, png, np.stack(faces), [np.asarray(memoryview(b)) for b in png]):
        np.testing.assert_allclose(embedder.embed(form), ref, atol=1e-6, rtol=0)
    np.testing.assert_allclose(embedder.embed(files[1]), ref[1:2], atol=1e-6, rtol=0)
    # resized exactly like LoadFaceImage(size=64) does (INTER_AREA when shrinking)
    small = [cv2.resize(f, (SIZE, SIZE), interpolation=cv2.INTER_AREA) for f in faces]
    np.testing.assert_allclose(embedder.embed(small), ref, atol=1e-6, rtol=0)
    # batching does not change the result
    one_by_one = FaceEmbedder(_config(_recognizer()), path, batch_size=1)
    np.testing.assert_allclose(one_by_one.embed(faces), ref, atol=1e-5, rtol=0)
    # raw = the flip-fused sum; flip off = the plain embedding
    raw = embedder.embed(faces, raw=True)
    np.testing.assert_allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), ref, atol=1e-6)
    no_flip = FaceEmbedder(_config(_recognizer()), path, flip_test=False)
    fused = no_flip.embed(small, raw=True) + no_flip.embed([s[:, ::-1] for s in small], raw=True)
    np.testing.assert_allclose(fused, raw, rtol=1e-4, atol=1e-4 * np.abs(raw).max())
    assert np.abs(no_flip.embed(faces) - ref).max() > 1e-3
    # and the direct model forward agrees
    inputs = torch.stack([torch.from_numpy(s[..., ::-1].copy()).permute(2, 0, 1) for s in small])
    with torch.no_grad():
        direct = model.extract_feat((inputs.float() - 127.5) / 127.5)
        direct = direct + model.extract_feat((inputs.flip(-1).float() - 127.5) / 127.5)
    np.testing.assert_allclose(raw, direct.numpy(), rtol=1e-4, atol=1e-4 * np.abs(raw).max())


def _similarity_warp(img, landmarks, angle=25.0, scale=1.7, shift=(110, 90), canvas=(330, 310)):
    # a photo in which the face is rotated, enlarged and off-centre (the whole crop inside)
    matrix = cv2.getRotationMatrix2D((56, 56), angle, scale)
    matrix[:, 2] += shift
    warped = cv2.warpAffine(img, matrix, canvas, flags=cv2.INTER_LINEAR)
    points = landmarks @ matrix[:, :2].T + matrix[:, 2]
    return warped, points.astype(np.float32)


def test_landmarks_align_the_face(trained):
    _, _, embedder, _ = trained
    face, lm = _face(5, return_landmarks=True)
    warped, lm_warped = _similarity_warp(face, lm)
    assert warped.shape == (310, 330, 3)
    reference = embedder.embed(face, landmarks=lm)[0]
    aligned = embedder.embed(warped, landmarks=lm_warped[None])[0]
    unaligned = embedder.embed(warped)[0]
    other_face, other_lm = _face(6, return_landmarks=True)
    other = embedder.embed(other_face, landmarks=other_lm)[0]
    assert float(aligned @ reference) > 0.99
    assert float(aligned @ reference) > float(aligned @ other)
    assert float(aligned @ reference) > float(unaligned @ reference) + 0.01
    # mixed list: None = already aligned
    both = embedder.embed([face, warped], landmarks=[None, lm_warped])
    np.testing.assert_allclose(both[1], aligned, atol=1e-5)
    np.testing.assert_allclose(both[0], embedder.embed(face)[0], atol=1e-5)
    # verify takes landmarks too
    score = embedder.verify(face, warped, threshold=0.5, landmarks1=lm,
                            landmarks2=lm_warped)['score']
    assert score == pytest.approx(float(aligned @ reference), abs=1e-5)


def _distiller_cfg(teacher_path):
    return dict(type='CoupleFaceDistiller', student=_recognizer(),
                teacher=dict(model=dict(type='FaceRecognizer', backbone=_backbone(4, 16)),
                             checkpoint=teacher_path),
                connector=dict(type='LinearConnector', in_channels=EMB, out_channels=16),
                fcd_loss=dict(type='FeatureConsistencyLoss'))


def test_distiller_checkpoint_builds_student_only(tmp_path):
    teacher = MODELS.build(dict(type='FaceRecognizer', backbone=_backbone(4, 16)))
    teacher_path = str(tmp_path / 'teacher_backbone.pth')
    torch.save(teacher.backbone.state_dict(), teacher_path)
    torch.manual_seed(1)
    distiller = MODELS.build(_distiller_cfg(teacher_path))
    calibrate_bn(distiller.student, SIZE)
    state = distiller.state_dict()
    assert '_extra_state' in state and any(k.startswith('connector.') for k in state)
    ckpt = str(tmp_path / 'distiller.pth')
    torch.save({'state_dict': state, 'meta': {'iter': 10}}, ckpt)
    import os
    os.remove(teacher_path)  # building or loading the teacher would now fail

    faces = [_face(i) for i in range(2)]
    embedder = FaceEmbedder(_config(_distiller_cfg(teacher_path)), ckpt)
    assert embedder.checkpoint_info['kind'] == 'distiller'
    assert embedder.checkpoint_info['teacher']['teacher_checkpoint'] == osp.abspath(teacher_path)
    assert embedder.model.head is None
    student = distiller.student.eval()
    student.flip_test = True
    small = [cv2.resize(f, (SIZE, SIZE), interpolation=cv2.INTER_AREA) for f in faces]
    data = student.data_preprocessor(
        dict(inputs=[torch.from_numpy(s.transpose(2, 0, 1).copy()) for s in small]), False)
    with torch.no_grad():
        expected = student.embed(data['inputs']).numpy()
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(embedder.embed(faces), expected, atol=1e-5)
    # the student's own recognizer config loads the distiller checkpoint as well
    as_student = FaceEmbedder(_config(_recognizer()), ckpt)
    np.testing.assert_allclose(as_student.embed(faces), expected, atol=1e-5)


def test_bare_insightface_backbone(trained, tmp_path):
    model, _, embedder, _ = trained
    bare = str(tmp_path / 'backbone.pth')
    torch.save(model.backbone.state_dict(), bare)
    faces = [_face(i) for i in range(2)]
    other = FaceEmbedder(_config(_recognizer()), bare)
    assert other.checkpoint_info['kind'] == 'backbone'
    np.testing.assert_allclose(other.embed(faces), embedder.embed(faces), atol=1e-6)


def test_other_architecture_is_a_one_line_error(tmp_path):
    mbf = MODELS.build(dict(type='MobileFaceNet', input_size=SIZE, embedding_size=EMB))
    path = str(tmp_path / 'mbf_backbone.pth')
    torch.save(mbf.state_dict(), path)
    with pytest.raises(CheckpointKeyError) as err:
        FaceEmbedder(_config(_recognizer()), path)
    message = str(err.value)
    assert '\n' not in message and path in message
    assert 'missing keys: backbone.conv1.weight' in message
    assert 'unexpected keys: backbone.layers.0.layers.0.weight' in message
    # same keys, other widths: the shape mismatches are listed
    wide = MODELS.build(_recognizer(_backbone(base=16)))
    path = str(tmp_path / 'wide.pth')
    torch.save({'state_dict': wide.state_dict()}, path)
    with pytest.raises(CheckpointKeyError, match=r'shape mismatches: backbone\.conv1\.weight '
                       r'\(checkpoint \(16, 3, 3, 3\) vs model \(8, 3, 3, 3\)\)') as err:
        FaceEmbedder(_config(_recognizer()), path)
    assert '\n' not in str(err.value)


def test_bad_inputs(trained, tmp_path):
    _, _, embedder, _ = trained
    bad = tmp_path / 'broken.jpg'
    bad.write_bytes(b'not an image at all')
    with pytest.raises(ImageDecodeError, match=str(bad)):
        embedder.embed([str(bad)])
    missing = str(tmp_path / 'missing.jpg')
    with pytest.raises(FileNotFoundError, match=missing):
        embedder.embed(missing)
    face = _face(1)
    with pytest.raises(ValueError, match=r'landmarks of image 0 have shape \(4, 2\)'):
        embedder.embed([face], landmarks=[np.zeros((4, 2))])
    with pytest.raises(ValueError, match=r'landmarks of image 1 have shape \(3, 2\)'):
        embedder.embed([face, face], landmarks=[None, np.zeros((3, 2))])
    with pytest.raises(ValueError, match=r'landmarks of image 0 have shape \(6, 2\)'):
        embedder.embed([face, face], landmarks=np.zeros((2, 6, 2)))
    with pytest.raises(ValueError, match='2 landmark sets for 1 images'):
        embedder.embed([face], landmarks=np.zeros((2, 5, 2)))
    with pytest.raises(ValueError, match='no verification threshold'):
        FaceEmbedder(_config(_recognizer()), trained[1]).verify(face, face)

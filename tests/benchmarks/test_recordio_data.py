"""coupleface.benchmarks.recordio_data: synthetic records, the dataset over them, the raw
decode baseline and the throughput probe."""
import torch

from coupleface.benchmarks.recordio_data import (
    RawDecode,
    build_dataset,
    images_per_s,
    make_loader,
    make_synthetic,
)


def test_synthetic_records_load_through_both_paths(tmp_path):
    prefix = str(tmp_path / 'train')
    make_synthetic(prefix, 40, ids=4, side=32)
    dataset = build_dataset(prefix)
    assert len(dataset) == 40 and dataset.num_classes == 4
    sample = dataset[0]
    assert tuple(sample['inputs'].shape) == (3, 112, 112)
    assert build_dataset(prefix, full_pipeline=False)[0]['img'].shape == (112, 112, 3)

    from coupleface.datasets.mx_record import unpack
    payloads = [unpack(dataset.reader.read_idx(k))[1] for k in dataset.get_rec_keys().tolist()]
    raw = RawDecode(payloads)
    assert len(raw) == 40 and raw[3].shape == (32, 32, 3)
    assert images_per_s(make_loader(raw, 0, 8), 16) > 0
    assert images_per_s(make_loader(dataset, 0, 8), 16) > 0


def test_fast_path_batches_through_its_collate(tmp_path):
    from coupleface.benchmarks.recordio_data import build_fast_dataset, fast_collate
    prefix = str(tmp_path / 'train')
    make_synthetic(prefix, 16, ids=2, side=32)
    loader = make_loader(build_fast_dataset(prefix), 0, 8, collate=fast_collate())
    batch = next(iter(loader))
    assert tuple(batch['inputs'].shape) == (8, 3, 112, 112) and len(batch['data_samples']) == 8
    from coupleface.datasets.transforms import RandomFaceFlip
    flip = RandomFaceFlip(prob=0.5)  # the collate draws its flips
    assert batch['data_samples'].flip.tolist() == [
        flip(dict(sample_idx=int(i)))['flip'] for i in batch['data_samples'].sample_idx]
    assert images_per_s(loader, 8) > 0


def test_decode_in_the_collate_gives_the_per_sample_decode_batches(tmp_path):
    from coupleface.benchmarks.recordio_data import build_fast_dataset, fast_collate
    prefix = str(tmp_path / 'train')
    make_synthetic(prefix, 16, ids=2, side=32)  # 32 px records enlarged to 112 by both
    per_sample = next(iter(make_loader(build_fast_dataset(prefix), 0, 8,
                                       collate=fast_collate())))
    in_collate = next(iter(make_loader(build_fast_dataset(prefix, decode_in_collate=True), 0,
                                       8, collate=fast_collate('cpu'))))
    assert torch.equal(per_sample['inputs'], in_collate['inputs'])
    assert in_collate['inputs'].shape == (8, 3, 112, 112)
    assert torch.equal(per_sample['data_samples'].flip, in_collate['data_samples'].flip)


def test_device_decoder_decodes_the_shipped_bytes_as_the_collate_does(tmp_path):
    from coupleface.benchmarks.recordio_data import (
        build_fast_dataset,
        device_decoder,
        fast_collate,
    )
    from coupleface.models.data_preprocessors import FaceDataPreprocessor
    prefix = str(tmp_path / 'train')
    make_synthetic(prefix, 16, ids=2, side=112)
    dataset = build_fast_dataset(prefix, decode_in_collate=True)
    shipped = next(iter(make_loader(dataset, 0, 8, collate=fast_collate('device'))))
    decoded = next(iter(make_loader(dataset, 0, 8, collate=fast_collate('cpu'))))
    assert 'jpeg_bytes' in shipped and 'inputs' not in shipped
    on_device = FaceDataPreprocessor().decode_jpeg(shipped)['inputs']
    assert torch.equal(on_device, decoded['inputs'])  # libjpeg-turbo both, flips included
    seen = []
    consume = device_decoder('cpu')
    rate = images_per_s(make_loader(dataset, 0, 4, collate=fast_collate('device')), 8,
                        consume=lambda b: seen.append(len(b['data_samples'])) or consume(b))
    assert rate > 0 and seen[0] == 4 and sum(seen[1:]) >= 8

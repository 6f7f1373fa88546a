"""A missing data set says how to make it (SynthFaces command, data_preparation.md)."""
import pytest

from coupleface.datasets import ImageFolderFaceDataset, MXFaceDataset, VerificationBinDataset
from coupleface.datasets.missing_data import check_exists

HINT = r'make it with `python tools/make_synthfaces.py data/synthfaces`'


def test_check_exists_passes_existing(tmp_path):
    check_exists(str(tmp_path), 'folder')  # no error


@pytest.mark.parametrize('build,what', [
    (lambda root: MXFaceDataset(data_root=root, pipeline=[]), 'RecordIO file'),
    (lambda root: ImageFolderFaceDataset(data_root=root, pipeline=[]), 'image folder'),
    (lambda root: VerificationBinDataset(data_root=root, ann_files=['val.bin'],
                                         pipeline=[]), 'verification pair set'),
])
def test_missing_sets_name_path_and_fix(tmp_path, build, what):
    root = str(tmp_path / 'synthfaces')
    with pytest.raises(FileNotFoundError, match=rf'{what} not found: {root}.*{HINT}.*'
                                                r'docs/data_preparation.md'):
        build(root)

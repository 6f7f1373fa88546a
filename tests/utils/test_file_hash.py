"""file_sha256: the digest that records which checkpoint or bank a run used."""
import hashlib
import os

from coupleface.utils.file_hash import file_sha256


def test_file_sha256(tmp_path):
    path = tmp_path / 'blob.bin'
    data = os.urandom(3000)
    path.write_bytes(data)
    assert file_sha256(path, chunk=1000) == hashlib.sha256(data).hexdigest()

"""Read insightface/mxnet RecordIO (``.rec`` + ``.idx``) without mxnet.

* mxnet ``.idx``: text lines ``key<TAB>offset`` (any order), parsed here in blocks.
* ``.rec``: dmlc-core RecordIO chunks holding ``IRHeader`` records; the codec (framing,
  ``pack``/``unpack``) is :mod:`coupleface.datasets.mx_record_codec`, the writer
  :mod:`coupleface.datasets.mx_record_writer`.

The reader does plain positioned reads (``os.pread``) on one lazily opened,
unbuffered file handle per process, so its memory does not depend on the file
size and it is safe to use from forked DataLoader workers.
"""
from __future__ import annotations

import os
import os.path as osp
import warnings
from typing import Iterable, List, Optional, Tuple

import numpy as np

from .mx_record_codec import (
    CHUNK_HEADER,
    IR_SIZE,
    LENGTH_MASK,
    MAGIC_BYTES,
    RECORDIO_MAGIC,
    IRHeader,
    RecordIOError,
    unpack,
)

__all__ = ['MXIndexedRecordIO']

_HAS_PREAD = hasattr(os, 'pread')
# bumped in every forked child: a reader opened before the fork reopens its file there
# (comparing it costs nothing per read, unlike os.getpid(), a system call)
_fork_generation = [0]
if hasattr(os, 'register_at_fork'):  # no fork on Windows
    os.register_at_fork(after_in_child=lambda: _fork_generation.__setitem__(
        0, _fork_generation[0] + 1))

# chunk header + IRHeader + up to 4 float32 labels: what a header scan reads per record
_SCAN_BYTES = CHUNK_HEADER.size + IR_SIZE + 16
_SCAN_MAX_FLAG = 4
# records this dense (mean bytes per record) are scanned by reading whole blocks; larger
# ones (112 px JPEG crops are ~6 KB) by one 48-byte pread each, faster with a warm cache
_BLOCK_SCAN_MAX_GAP = 2048
_BLOCK_BYTES = 8 * 1024 * 1024
_SCAN_BATCH = 1 << 16
_SCAN_DTYPE = np.dtype([('magic', '<u4'), ('lrec', '<u4'), ('flag', '<u4'), ('label', '<f4'),
                        ('id', '<u8'), ('id2', '<u8'), ('label0', '<f4'), ('rest', 'V12')])
_IDX_BLOCK_BYTES = 4 * 1024 * 1024
_IDX_CHARS = np.zeros(256, bool)
_IDX_CHARS[[ord(c) for c in '0123456789-\t\n']] = True
_IDX_FAST_MAX_DIGITS = 18  # '-' + 17 digits or 18 digits: always inside int64
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def _parse_idx_lines(idx_path: str, text: str, first_line: int
                     ) -> Tuple[np.ndarray, np.ndarray]:
    """Line-by-line ``.idx`` parse that names the first bad line."""
    keys, offsets = [], []
    for lineno, line in enumerate(text.split('\n'), first_line):
        if not line.strip():
            continue
        fields = line.strip().split('\t')
        try:
            if len(fields) != 2:
                raise ValueError
            key, offset = int(fields[0]), int(fields[1])
            if offset < 0 or offset % 4 or not _INT64_MIN <= key <= _INT64_MAX \
                    or offset > _INT64_MAX:
                raise ValueError
        except ValueError:
            raise RecordIOError(
                f'{idx_path}: line {lineno}: expected "<int64 key>\\t<int64 offset, a multiple '
                f'of 4>", got {line[:60]!r}') from None
        keys.append(key)
        offsets.append(offset)
    return np.asarray(keys, np.int64).reshape(-1), np.asarray(offsets, np.int64).reshape(-1)


def _parse_idx_block(idx_path: str, block: bytes, first_line: int
                     ) -> Tuple[np.ndarray, np.ndarray]:
    """Parse whole ``.idx`` lines; ``first_line`` numbers the first one for errors."""
    body = block[:-1] if block.endswith(b'\n') else block
    arr = np.frombuffer(body, np.uint8)
    # Fast path (numpy parses the integers in C), taken only when the bytes are provably
    # "int<TAB>int" lines: digits/minus, tabs and newlines alternating, one tab per line.
    # Anything else (blank lines, CRLF, junk) goes through the line parser.
    if arr.size:
        lines = int(np.count_nonzero(arr == 10)) + 1
        sep_pos = np.flatnonzero((arr == 9) | (arr == 10))
        seps = arr[sep_pos]
        # numpy saturates integers beyond int64 silently: longer fields take the line parser
        field_len = np.diff(sep_pos, prepend=-1, append=arr.size) - 1
        if (_IDX_CHARS[arr].all() and seps.size == 2 * lines - 1
                and (seps[0::2] == 9).all() and (seps[1::2] == 10).all()
                and int(field_len.max()) <= _IDX_FAST_MAX_DIGITS):
            with warnings.catch_warnings():
                warnings.simplefilter('error')
                try:
                    flat = np.fromstring(body, dtype=np.int64, sep=' ')
                except (ValueError, DeprecationWarning):
                    flat = None
            if flat is not None and flat.size == 2 * lines:
                keys, offsets = flat[0::2].copy(), flat[1::2].copy()
                if (offsets >= 0).all() and not (offsets % 4).any():
                    return keys, offsets
    return _parse_idx_lines(idx_path, block.decode('utf-8', errors='replace'), first_line)


def _parse_idx(idx_path: str) -> Tuple[np.ndarray, np.ndarray]:
    """Read an ``.idx`` file into (keys, offsets) int64 arrays, in file order.

    Parsed in blocks of whole lines, so the transient memory is bounded by the
    block size, not by the number of lines.
    """
    key_parts, offset_parts = [], []
    line = 1
    rest = b''
    with open(idx_path, 'rb') as f:
        while True:
            data = f.read(_IDX_BLOCK_BYTES)
            buf = rest + data
            cut = len(buf) if not data else buf.rfind(b'\n') + 1
            block, rest = buf[:cut], buf[cut:]
            if block:
                keys, offsets = _parse_idx_block(idx_path, block, line)
                key_parts.append(keys)
                offset_parts.append(offsets)
                line += block.count(b'\n')
            if not data:
                break
    if not key_parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(key_parts), np.concatenate(offset_parts)


class MXIndexedRecordIO:
    """Read-only random access to an mxnet ``.rec`` file through its ``.idx``.

    Same reading API as ``mxnet.recordio.MXIndexedRecordIO(idx, rec, 'r')``
    (``read_idx``, ``keys``) without mxnet. One unbuffered file handle is opened
    lazily per process (re-opened after a fork) and dropped when pickled, so
    the object can be handed to DataLoader workers.

    The ``.idx`` is checked at open: every offset must lie inside the ``.rec``
    and the first and last records must be well-formed.

    Args:
        idx_path: Path of the ``.idx`` text file.
        rec_path: Path of the ``.rec`` file.

    Examples:
        >>> rec = MXIndexedRecordIO('train.idx', 'train.rec')
        >>> header, jpeg = unpack(rec.read_idx(1))
    """

    def __init__(self, idx_path: str, rec_path: str) -> None:
        self.idx_path = str(idx_path)
        self.rec_path = str(rec_path)
        if not osp.isfile(self.rec_path):
            raise FileNotFoundError(f'RecordIO file not found: {self.rec_path}')
        if not osp.isfile(self.idx_path):
            raise FileNotFoundError(f'RecordIO index not found: {self.idx_path}')
        self._file = None
        self._fork_gen = None
        self.file_size = osp.getsize(self.rec_path)
        self._keys, self._offsets = _parse_idx(self.idx_path)
        self._build_lookup()
        self._check_offsets()

    # ------------------------------------------------------------------ index
    def _build_lookup(self) -> None:
        keys, offsets = self._keys, self._offsets
        n = keys.size
        # span of each record = distance to the next indexed offset (bounded read size)
        order = np.argsort(offsets, kind='stable')
        sorted_off = offsets[order]
        nxt = np.empty(n, np.int64)
        if n:
            nxt[:-1] = sorted_off[1:]
            nxt[-1] = self.file_size
        # 4 bytes per record (reads are capped at 1 MiB first anyway); the index costs
        # 8 (key) + 8 (offset) + 4 (span) + 4 (lookup) bytes per record
        span = np.empty(n, np.uint32)
        span[order] = np.minimum(nxt - sorted_off, 1 << 20)
        self._span = span
        # key -> row: a dense table when keys are (nearly) 0..n-1, else binary search
        if n and keys.min() >= 0 and keys.max() < 2 * n + 1024:
            table = np.full(int(keys.max()) + 1, -1, np.int32 if n < 2**31 else np.int64)
            table[keys] = np.arange(n)
            dup = n - int((table >= 0).sum())
            self._table, self._sorted_keys, self._sorted_rows = table, None, None
        else:
            self._table = None
            self._sorted_rows = np.argsort(keys, kind='stable')
            self._sorted_keys = keys[self._sorted_rows]
            dup = int((np.diff(self._sorted_keys) == 0).sum()) if n else 0
        if dup:
            uniq, counts = np.unique(keys, return_counts=True)
            raise RecordIOError(f'{self.idx_path}: key {int(uniq[counts > 1][0])} is listed '
                                f'more than once ({dup} duplicate keys)')

    def _row(self, key: int) -> int:
        key = int(key)
        if self._table is not None:
            row = int(self._table[key]) if 0 <= key < self._table.size else -1
        else:
            pos = int(np.searchsorted(self._sorted_keys, key))
            ok = pos < self._sorted_keys.size and int(self._sorted_keys[pos]) == key
            row = int(self._sorted_rows[pos]) if ok else -1
        if row < 0:
            raise RecordIOError(f'{self.idx_path}: unknown key {key} '
                                f'({len(self)} keys in the index)')
        return row

    def rows(self, keys: Iterable[int]) -> np.ndarray:
        """The ``.idx`` rows of ``keys`` (for :meth:`read_row`), vectorised: millions of
        keys in milliseconds.

        Raises:
            RecordIOError: a key is not in the index.
        """
        if not isinstance(keys, np.ndarray):
            keys = np.fromiter((int(k) for k in keys), np.int64)
        keys = keys.astype(np.int64, copy=False).reshape(-1)
        rows = np.full(keys.size, -1, np.int64)
        if self._table is not None:
            inside = (keys >= 0) & (keys < self._table.size)
            rows[inside] = self._table[keys[inside]]
        elif self._sorted_keys.size:
            pos = np.minimum(np.searchsorted(self._sorted_keys, keys), self._sorted_keys.size - 1)
            found = self._sorted_keys[pos] == keys
            rows[found] = self._sorted_rows[pos[found]]
        missing = np.nonzero(rows < 0)[0]
        if missing.size:
            self._row(int(keys[missing[0]]))  # raises naming the key
        return rows

    def _check_offsets(self) -> None:
        if not self._keys.size:
            return
        last = int(np.argmax(self._offsets))
        max_off = int(self._offsets[last])
        if max_off + CHUNK_HEADER.size > self.file_size:
            raise RecordIOError(
                f'{self.idx_path}: key {int(self._keys[last])} has offset {max_off}, past the end '
                f'of {self.rec_path} ({self.file_size} bytes): wrong .idx or truncated .rec')
        # the first and last records must parse (wrong magic / truncated file show here)
        first = int(np.argmin(self._offsets))
        self._read_row(first)
        self._read_row(last)

    def __len__(self) -> int:
        return int(self._keys.size)

    @property
    def keys(self) -> List[int]:
        """Keys in ``.idx`` order (a new list; use ``key_array`` for large sets)."""
        return self._keys.tolist()

    @property
    def key_array(self) -> np.ndarray:
        """Keys in ``.idx`` order as an int64 array (read-only view)."""
        view = self._keys.view()
        view.flags.writeable = False
        return view

    def offset(self, key: int) -> int:
        """Byte offset of ``key``'s record in the ``.rec`` file."""
        return int(self._offsets[self._row(key)])

    def __contains__(self, key: int) -> bool:
        try:
            self._row(key)
        except RecordIOError:
            return False
        return True

    # ------------------------------------------------------------------ I/O
    def _fd(self) -> int:
        if self._file is None or self._fork_gen != _fork_generation[0]:
            # a forked child gets its own handle: a shared offset would race
            self._file = open(self.rec_path, 'rb', buffering=0)
            self._fork_gen = _fork_generation[0]
        return self._file.fileno()

    def _pread(self, size: int, offset: int) -> bytes:
        fd = self._fd()
        if _HAS_PREAD:
            return os.pread(fd, size, offset)
        self._file.seek(offset)  # pragma: no cover (Windows)
        return self._file.read(size)

    def _read_row(self, row: int) -> bytes:
        offset = int(self._offsets[row])
        buf = self._pread(min(max(int(self._span[row]), CHUNK_HEADER.size), 1 << 20), offset)
        return self._read_at(offset, buf, int(self._keys[row]))

    def _read_at(self, offset: int, buf: bytes, key) -> bytes:
        """Re-join the record starting at ``offset`` from ``buf`` (read from there), reading
        more where it runs short."""
        parts = []
        pos = 0
        while True:
            if len(buf) < pos + CHUNK_HEADER.size:
                buf += self._pread(pos + CHUNK_HEADER.size - len(buf), offset + len(buf))
                if len(buf) < pos + CHUNK_HEADER.size:
                    raise RecordIOError(
                        f'{self.rec_path}: record key {key} at offset {offset} is truncated: '
                        f'chunk header at {offset + pos} runs past the end of the file '
                        f'({self.file_size} bytes)')
            magic, lrec = CHUNK_HEADER.unpack_from(buf, pos)
            if magic != RECORDIO_MAGIC:
                raise RecordIOError(
                    f'{self.rec_path}: wrong magic 0x{magic:08x} at offset {offset + pos} '
                    f'(record key {key}; expected 0x{RECORDIO_MAGIC:08x}): not a RecordIO '
                    'file or the .idx does not match it')
            cflag, length = lrec >> 29, lrec & LENGTH_MASK
            if (not parts and cflag not in (0, 1)) or (parts and cflag not in (2, 3)):
                raise RecordIOError(
                    f'{self.rec_path}: record key {key} at offset {offset}: unexpected chunk '
                    f'flag {cflag} at offset {offset + pos}')
            end = pos + CHUNK_HEADER.size + length
            if len(buf) < end:
                # a corrupt length (up to 512 MiB) is not allocated and read for nothing
                if offset + end <= self.file_size:
                    buf += self._pread(end - len(buf), offset + len(buf))
                if len(buf) < end:
                    raise RecordIOError(
                        f'{self.rec_path}: record key {key} at offset {offset} is truncated: '
                        f'its {length}-byte payload runs past the end of the file '
                        f'({self.file_size} bytes)')
            parts.append(buf[pos + CHUNK_HEADER.size:end])
            if cflag in (0, 3):
                return parts[0] if len(parts) == 1 else MAGIC_BYTES.join(parts)
            pos = end + (-length % 4)

    def read_idx(self, key: int) -> bytes:
        """Return the record stored under ``key`` (chunks re-joined).

        Raises:
            RecordIOError: unknown key, wrong magic or truncated record.
        """
        return self._read_row(self._row(key))

    def read_row(self, row: int) -> bytes:
        """Return the record in ``.idx`` row ``row`` (see :meth:`rows`): ``read_idx`` without
        the key lookup, for readers that resolved their keys once."""
        return self._read_row(row)

    def read_header(self, key: int) -> IRHeader:
        """Return the ``IRHeader`` of ``key``'s record (label array when ``flag > 0``)."""
        return unpack(self.read_idx(key))[0]

    def scan_labels(self, keys: Optional[Iterable[int]] = None
                    ) -> Tuple[np.ndarray, np.ndarray]:
        """Read the ``IRHeader`` flag and first label of many records, not their payloads.

        Reads ``8 + 24 + 16`` bytes per record: one positioned read each, or
        whole 8 MiB blocks when records average under 2 KiB. Records whose
        header does not fit in that window (more than 4 labels, a first chunk
        split at a magic word) are read in full.

        Args:
            keys: Keys to scan (default: all, in ``.idx`` order).

        Returns:
            tuple[np.ndarray, np.ndarray]: int64 ``flag`` and float64 first
            label (the scalar label, or ``label[0]`` of an array label) of each
            key, in the order of ``keys``.

        Raises:
            RecordIOError: a record has a wrong magic, a bad chunk or is truncated.
        """
        rows = np.arange(len(self)) if keys is None else self.rows(keys)
        n = rows.size
        flags = np.zeros(n, np.int64)
        first = np.zeros(n, np.float64)
        if not n:
            return flags, first
        offsets = self._offsets[rows]
        order = np.argsort(offsets, kind='stable')  # sequential I/O
        dense = (int(offsets.max() - offsets.min()) + _SCAN_BYTES) // n <= _BLOCK_SCAN_MAX_GAP
        for b in range(0, n, _SCAN_BATCH):  # bounded memory: _SCAN_BATCH x 48 bytes
            sel = order[b:b + _SCAN_BATCH]
            heads = self._gather_heads(offsets[sel], dense)
            flags[sel], first[sel] = self._parse_heads(heads, rows[sel])
        return flags, first

    def _gather_heads(self, sorted_off: np.ndarray, dense: bool) -> np.ndarray:
        """The first ``_SCAN_BYTES`` bytes at each (sorted) offset, zero-padded at EOF."""
        n = sorted_off.size
        if not dense:
            if hasattr(os, 'pread'):
                fd, pread = self._fd(), os.pread
                bufs = [pread(fd, _SCAN_BYTES, off) for off in sorted_off.tolist()]
            else:  # pragma: no cover (Windows)
                bufs = [self._pread(_SCAN_BYTES, off) for off in sorted_off.tolist()]
            if bufs and len(bufs[-1]) < _SCAN_BYTES:  # only the last records can meet EOF
                bufs = [b.ljust(_SCAN_BYTES, b'\0') for b in bufs]
            return np.frombuffer(b''.join(bufs), np.uint8).reshape(n, _SCAN_BYTES).copy()
        heads = np.zeros((n, _SCAN_BYTES), np.uint8)
        window = np.arange(_SCAN_BYTES)
        i = 0
        while i < n:
            start = int(sorted_off[i])
            block = np.frombuffer(self._pread(_BLOCK_BYTES, start), np.uint8)
            # the records whose scan window lies inside this block (at least one)
            j = int(np.searchsorted(sorted_off, start + block.size - _SCAN_BYTES, 'right'))
            j = max(j, i + 1)
            rel = sorted_off[i:j] - start
            if rel[-1] + _SCAN_BYTES <= block.size:
                heads[i:j] = block[rel[:, None] + window]
            else:  # end of file
                for r, o in zip(range(i, j), rel):
                    part = block[o:o + _SCAN_BYTES]
                    heads[r, :part.size] = part
            i = j
        return heads

    def _parse_heads(self, heads: np.ndarray, rows: np.ndarray
                     ) -> Tuple[np.ndarray, np.ndarray]:
        h = heads.view(_SCAN_DTYPE)[:, 0]
        bad = np.nonzero(h['magic'] != RECORDIO_MAGIC)[0]
        if bad.size:
            self._read_row(int(rows[bad[0]]))  # raises with the file/offset/key message
        cflag, length = h['lrec'] >> 29, h['lrec'] & LENGTH_MASK
        flags = h['flag'].astype(np.int64)
        first = np.where(flags > 0, h['label0'], h['label']).astype(np.float64)
        need = IR_SIZE + 4 * np.minimum(flags, _SCAN_MAX_FLAG)
        # what the fixed window cannot parse: split first chunk, many labels, short record
        slow = (cflag > 1) | (flags > _SCAN_MAX_FLAG) | (length < need)
        for i in np.nonzero(slow)[0]:
            header, _ = unpack(self._read_row(int(rows[i])))  # raises on bad records
            flags[i] = header.flag
            if header.flag > 0:
                first[i] = float(header.label[0])
            else:
                first[i] = header.label
        return flags, first

    # ------------------------------------------------------------------ pickling
    def close(self) -> None:
        """Close this process's file handle (re-opened on the next read)."""
        if self._file is not None and self._fork_gen == _fork_generation[0]:
            self._file.close()
        self._file = None
        self._fork_gen = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state['_file'] = None
        state['_fork_gen'] = None
        return state

    def __enter__(self) -> 'MXIndexedRecordIO':
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(idx_path={self.idx_path!r}, '
                f'rec_path={self.rec_path!r}, records={len(self)})')

"""Trajectory files (`.ebmtraj`) in NumPy: read what the `ebm.recorder` plugin and `ebm record`
wrote, and write episodes from anywhere (another simulator, robot logs) for `ebm traj train`.

The format (datasets/trajectory/record_file.h) is a sequence of frames

    magic "EBTR" (u32 LE) | length (u32 LE) | masked CRC32C of those 8 bytes | payload | masked
    CRC32C of the payload

whose first payload is a Record holding the FileHeader and every further one a Record holding an
Episode (datasets/trajectory/trajectory.proto). A frame holds `num_frames` rows of the header's
fields, concatenated, as float32.

    import ebm
    for ep in ebm.trajectory.read("runs/hand_traj/trajectories"):
        print(ep.episode_id, ep.start_state, ep.branch, ep["qpos"].shape)   # (frames, nq)

    ebm.trajectory.write("mine.ebmtraj", [{"qpos": q, "qvel": v}], timestep=0.002)
"""
import os
import struct
import warnings
from dataclasses import dataclass, field
from typing import Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import _wire
from ._crc32c import masked_crc32c

FRAME_MAGIC = 0x52544245  # bytes "EBTR"
FORMAT_VERSION = 1
MAX_PAYLOAD = 1 << 30
FILE_SUFFIX = ".ebmtraj"
_HEAD = 12  # magic, length, head checksum
_OVERHEAD = 16

__all__ = ["Episode", "Header", "TrajectoryError", "Writer", "read", "read_header", "shards",
           "write"]


class TrajectoryError(Exception):
    """An unreadable, corrupt or incompatible trajectory file. `file` and `offset` (the byte
    offset of the offending frame, None when it is about the whole file) say where."""

    def __init__(self, message, file=None, offset=None):
        super().__init__(message)
        self.file = file
        self.offset = offset


@dataclass
class Header:
    """The first record of a file: the scene and the layout of one frame."""
    fields: List[Tuple[str, int]]
    timestep: float = 0.0
    decimation: int = 1
    model_name: str = ""
    model_hash: int = 0
    joint_names: List[str] = field(default_factory=list)
    element_names: Dict[str, List[str]] = field(default_factory=dict)
    writer: str = ""
    format_version: int = FORMAT_VERSION

    @property
    def frame_size(self) -> int:
        return sum(size for _, size in self.fields)

    def layout_text(self) -> str:
        return " ".join(f"{name}[{size}]" for name, size in self.fields) or "(none)"


@dataclass
class Episode:
    """One episode: every field as a float32 array [frames, size], and its metadata. Episodes
    read from a file also carry the file's header (time step, decimation, model hash)."""
    fields: Dict[str, np.ndarray]
    episode_id: int = 0
    seed: int = 0
    start_state: int = 0
    branch: int = 0
    start_time: float = 0.0
    header: Optional[Header] = None
    file: Optional[str] = None
    offset: Optional[int] = None

    def __getitem__(self, name: str) -> np.ndarray:
        return self.fields[name]

    @property
    def num_frames(self) -> int:
        return next(iter(self.fields.values())).shape[0] if self.fields else 0

    @property
    def timestep(self) -> float:
        """Physics time step of the scene (s); a frame lasts timestep x decimation."""
        return self.header.timestep if self.header else 0.0

    @property
    def decimation(self) -> int:
        return self.header.decimation if self.header else 1

    @property
    def model_hash(self) -> int:
        return self.header.model_hash if self.header else 0


# ---- reading ------------------------------------------------------------------------------

def _u32(b, at=0):
    return struct.unpack_from("<I", b, at)[0]


def _head_valid(head):
    return (len(head) >= _HEAD and _u32(head) == FRAME_MAGIC and _u32(head, 4) <= MAX_PAYLOAD
            and _u32(head, 8) == masked_crc32c(head[:8]))


def _parse_header(payload, file):
    try:
        record = {n: v for n, w, v in _wire.fields(payload) if w == _wire.LENGTH}
        if 1 not in record:
            raise TrajectoryError(f"{file}: the first record is not a file header", file, 0)
        h = Header(fields=[])
        for n, w, v in _wire.fields(record[1]):
            if n == 1 and w == _wire.VARINT:
                h.format_version = v
            elif n == 2 and w == _wire.LENGTH:
                h.model_name = _wire.as_str(v)
            elif n == 3 and w == _wire.FIXED64:
                h.model_hash = _wire.as_fixed64(v)
            elif n == 4 and w == _wire.FIXED64:
                h.timestep = _wire.as_double(v)
            elif n == 5 and w == _wire.VARINT:
                h.decimation = v
            elif n == 6 and w == _wire.LENGTH:
                name, size, elements = "", 0, []
                for fn, fw, fv in _wire.fields(v):
                    if fn == 1 and fw == _wire.LENGTH:
                        name = _wire.as_str(fv)
                    elif fn == 2 and fw == _wire.VARINT:
                        size = fv
                    elif fn == 3 and fw == _wire.LENGTH:
                        elements.append(_wire.as_str(fv))
                h.fields.append((name, size))
                if elements:
                    h.element_names[name] = elements
            elif n == 7 and w == _wire.LENGTH:
                h.joint_names.append(_wire.as_str(v))
            elif n == 8 and w == _wire.LENGTH:
                h.writer = _wire.as_str(v)
    except ValueError as e:
        raise TrajectoryError(f"{file}: malformed file header ({e})", file, 0) from None
    if h.format_version != FORMAT_VERSION:
        raise TrajectoryError(f"{file}: format version {h.format_version}, this reader reads "
                              f"{FORMAT_VERSION}", file, 0)
    for name, size in h.fields:
        if size == 0:
            raise TrajectoryError(f"{file}: field '{name}' has size 0", file, 0)
    if not 0 < h.frame_size <= MAX_PAYLOAD // 4:
        raise TrajectoryError(f"{file}: frame layout of {h.frame_size} values per frame", file, 0)
    return h


def _parse_episode(payload, header, file, offset):
    ep = Episode(fields={}, header=header, file=file, offset=offset)
    num_frames, chunks = 0, []
    try:
        record = [(n, v) for n, w, v in _wire.fields(payload) if w == _wire.LENGTH]
        bodies = [v for n, v in record if n == 2]
        if not bodies:
            raise TrajectoryError(f"{file}: record at offset {offset} is not an episode", file,
                                  offset)
        for n, w, v in _wire.fields(bodies[-1]):
            if w == _wire.VARINT:
                if n == 1:
                    ep.episode_id = v
                elif n == 2:
                    ep.seed = v
                elif n == 3:
                    ep.start_state = v
                elif n == 4:
                    ep.branch = v
                elif n == 5:
                    num_frames = v
            elif n == 6 and w == _wire.LENGTH:
                chunks.append(_wire.as_floats(v))
            elif n == 6 and w == _wire.FIXED32:
                chunks.append(np.frombuffer(v, dtype="<f4"))
            elif n == 7 and w == _wire.FIXED64:
                ep.start_time = _wire.as_double(v)
    except ValueError as e:
        raise TrajectoryError(f"{file}: malformed episode record at offset {offset} ({e})", file,
                              offset) from None
    data = np.concatenate(chunks) if chunks else np.zeros(0, dtype="<f4")
    if data.size != num_frames * header.frame_size:
        raise TrajectoryError(
            f"{file}: episode record at offset {offset} holds {data.size} values, expected "
            f"{num_frames} frames x {header.frame_size}", file, offset)
    frames = data.astype(np.float32).reshape(num_frames, header.frame_size)
    at = 0
    for name, size in header.fields:
        ep.fields[name] = np.ascontiguousarray(frames[:, at:at + size])
        at += size
    return ep


def _next_valid_head(f, start, file_size):
    """Byte offset of the next valid frame head after `start`, or None."""
    f.seek(start)
    rest = f.read(file_size - start)
    for i in range(1, len(rest) - _HEAD + 1):
        if _u32(rest, i) == FRAME_MAGIC and _head_valid(rest[i:i + _HEAD]):
            return start + i
    return None


def _frames(path, errors):
    """Yields (offset, payload) of the intact frames of one file, raising TrajectoryError (or, with
    errors='warn', warning and skipping as the C++ reader does) at a corrupt or cut-off frame."""
    def problem(message, offset):
        err = TrajectoryError(f"{path}: {message} at offset {offset}", path, offset)
        if errors == "raise":
            raise err
        warnings.warn(str(err), RuntimeWarning, stacklevel=4)

    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        pos = 0
        while pos < size:
            f.seek(pos)
            head = f.read(_HEAD)
            if len(head) < _HEAD:
                problem(f"torn tail: {len(head)} bytes after the last frame, too few for a "
                        "frame head", pos)
                return
            if not _head_valid(head):
                problem(f"corrupt frame: bad frame head (magic {_u32(head):x}, expected "
                        f"{FRAME_MAGIC:x}, or head checksum mismatch)", pos)
                nxt = _next_valid_head(f, pos, size)
                if nxt is None:
                    return
                pos = nxt
                continue
            length = _u32(head, 4)
            if size - pos < _OVERHEAD + length:
                problem(f"torn tail: frame of {length} payload bytes cut off after "
                        f"{size - pos} bytes", pos)
                return
            body = f.read(length + 4)
            payload = memoryview(body)[:length]
            stored, computed = _u32(body, length), masked_crc32c(payload)
            if stored != computed:
                problem(f"corrupt frame: payload checksum mismatch (stored {stored:x}, computed "
                        f"{computed:x})", pos)
            else:
                yield pos, payload
            pos += _OVERHEAD + length


def shards(path) -> List[str]:
    """The files a path names: itself, or the `*.ebmtraj` files of a directory in name order."""
    path = os.fspath(path)
    if os.path.isdir(path):
        files = sorted(os.path.join(path, n) for n in os.listdir(path) if n.endswith(FILE_SUFFIX))
        if not files:
            raise TrajectoryError(f"{path}: no {FILE_SUFFIX} files in this directory", path)
        return files
    if not os.path.exists(path):
        raise TrajectoryError(f"{path}: no such file or directory", path)
    return [path]


def read_header(path) -> Header:
    """The header of one trajectory file."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        head = f.read(_HEAD)
        if not _head_valid(head):
            raise TrajectoryError(f"{path}: not a trajectory file (no valid frame head at "
                                  "offset 0)", path, 0)
        length = _u32(head, 4)
        body = f.read(length + 4)
    if len(body) < length + 4:
        raise TrajectoryError(f"{path}: header record cut off", path, 0)
    if _u32(body, length) != masked_crc32c(body[:length]):
        raise TrajectoryError(f"{path}: header record at offset 0 fails its checksum", path, 0)
    return _parse_header(body[:length], path)


def _check_compatible(a: Header, b: Header, file):
    if (a.model_hash, a.layout_text(), a.decimation) != (b.model_hash, b.layout_text(),
                                                         b.decimation):
        raise TrajectoryError(
            f"{file}: incompatible with the first shard: model hash {b.model_hash:x} vs "
            f"{a.model_hash:x}, fields '{b.layout_text()}' vs '{a.layout_text()}', decimation "
            f"{b.decimation} vs {a.decimation}", file)


def read(path, errors: str = "raise") -> Iterator[Episode]:
    """Yields the episodes of a trajectory file or of a directory of shards (name order), each
    checked against its checksums. A corrupt or cut-off record raises TrajectoryError naming the
    file and the offset, after every complete episode before it was yielded; errors='warn' skips
    it with a warning instead (what the C++ reader does)."""
    if errors not in ("raise", "warn"):
        raise ValueError(f"errors must be 'raise' or 'warn', got {errors!r}")
    first = None
    for file in shards(path):
        header = read_header(file)
        if first is None:
            first = header
        else:
            _check_compatible(first, header, file)
        for offset, payload in _frames(file, errors):
            if offset == 0:
                continue
            try:
                yield _parse_episode(payload, header, file, offset)
            except TrajectoryError:
                if errors == "raise":
                    raise
                warnings.warn(f"{file}: skipped the record at offset {offset}", RuntimeWarning)


# ---- writing ------------------------------------------------------------------------------

def _frame(payload: bytes) -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise TrajectoryError(f"record of {len(payload)} bytes exceeds the {MAX_PAYLOAD}-byte "
                              "limit")
    head = struct.pack("<II", FRAME_MAGIC, len(payload))
    head += struct.pack("<I", masked_crc32c(head))
    return head + payload + struct.pack("<I", masked_crc32c(payload))


def _header_record(h: Header) -> bytes:
    body = bytearray()
    _wire.put_uint(body, 1, FORMAT_VERSION)
    _wire.put_str(body, 2, h.model_name)
    _wire.put_fixed64(body, 3, h.model_hash)
    _wire.put_double(body, 4, h.timestep)
    _wire.put_uint(body, 5, h.decimation)
    for name, size in h.fields:
        f = bytearray()
        _wire.put_str(f, 1, name)
        _wire.put_uint(f, 2, size)
        for element in h.element_names.get(name, []):
            _wire.put_bytes(f, 3, element.encode("utf-8"), always=True)
        _wire.put_bytes(body, 6, bytes(f), always=True)
    for joint in h.joint_names:
        _wire.put_bytes(body, 7, joint.encode("utf-8"), always=True)
    _wire.put_str(body, 8, h.writer)
    record = bytearray()
    _wire.put_bytes(record, 1, bytes(body), always=True)
    return bytes(record)


def _episode_record(ep: Episode, frames: np.ndarray) -> bytes:
    body = bytearray()
    _wire.put_uint(body, 1, ep.episode_id)
    _wire.put_uint(body, 2, ep.seed)
    _wire.put_uint(body, 3, ep.start_state)
    _wire.put_uint(body, 4, ep.branch)
    _wire.put_uint(body, 5, frames.shape[0])
    _wire.put_bytes(body, 6, frames.astype("<f4").tobytes())
    _wire.put_double(body, 7, ep.start_time)
    record = bytearray()
    _wire.put_bytes(record, 2, bytes(body), always=True)
    return bytes(record)


class Writer:
    """Appends episodes to one trajectory file, each with one write() (and an fsync with
    sync='episode'), so a killed process loses only episodes not yet appended. Refuses to
    overwrite an existing file unless append=True, which checks its header (model hash, fields,
    decimation) and appends after its last complete record."""

    def __init__(self, path, header: Header, sync: str = "episode", append: bool = False):
        if sync not in ("episode", "close", "none"):
            raise ValueError(f"sync must be 'episode', 'close' or 'none', got {sync!r}")
        if not header.fields or any(size <= 0 for _, size in header.fields):
            raise ValueError("header.fields must list (name, size > 0) pairs")
        self.path, self.header, self.sync = os.fspath(path), header, sync
        self.episodes_written = 0
        if os.path.exists(self.path):
            if not append:
                raise TrajectoryError(f"{self.path}: exists; refusing to overwrite recorded "
                                      "trajectories (append=True adds to it)", self.path)
            old = read_header(self.path)
            _check_compatible(old, header, self.path)
            end = 0
            for offset, payload in _frames(self.path, "warn"):
                end = offset + _OVERHEAD + len(payload)
            self.header = old
            self._f = open(self.path, "r+b")
            self._f.truncate(end)  # cut a torn tail: appended records follow a complete one
            self._f.seek(end)
            return
        parent = os.path.dirname(self.path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        self._f = open(self.path, "xb")
        self._write(_frame(_header_record(header)))
        self._fsync()

    def append(self, episode: Union[Episode, Mapping[str, np.ndarray]]) -> None:
        """Writes one episode; every field of the header must be present as [frames, size]."""
        ep = episode if isinstance(episode, Episode) else Episode(fields=dict(episode))
        frames = _stack_fields(ep, self.header, self.path)
        self._write(_frame(_episode_record(ep, frames)))
        if self.sync == "episode":
            self._fsync()
        self.episodes_written += 1

    def close(self) -> None:
        if self._f is not None and not self._f.closed:
            if self.sync != "none":
                self._fsync()
            self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _write(self, data: bytes) -> None:
        start = self._f.tell()
        try:
            self._f.write(data)
            self._f.flush()
        except OSError:
            self._f.truncate(start)  # the file keeps its records before this one
            raise

    def _fsync(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())


def _stack_fields(ep: Episode, header: Header, path) -> np.ndarray:
    columns, frames = [], None
    for name, size in header.fields:
        if name not in ep.fields:
            raise ValueError(f"{path}: episode {ep.episode_id} lacks field '{name}' (the file's "
                             f"fields: {header.layout_text()})")
        a = np.asarray(ep.fields[name], dtype=np.float32)
        if a.ndim == 1 and size == 1:
            a = a[:, None]
        if a.ndim != 2 or a.shape[1] != size or (frames is not None and a.shape[0] != frames):
            raise ValueError(f"{path}: episode {ep.episode_id} field '{name}' has shape "
                             f"{a.shape}, expected [{frames if frames is not None else 'frames'}"
                             f", {size}]")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{path}: episode {ep.episode_id} field '{name}' holds NaN or inf")
        frames = a.shape[0]
        columns.append(a)
    return np.concatenate(columns, axis=1)


def write(path, episodes: Iterable[Union[Episode, Mapping[str, np.ndarray]]], *,
          timestep: float, decimation: int = 1, fields: Optional[Sequence[Tuple[str, int]]] = None,
          model_name: str = "", model_hash: int = 0, joint_names: Sequence[str] = (),
          element_names: Optional[Mapping[str, Sequence[str]]] = None, sync: str = "episode",
          append: bool = False) -> int:
    """Writes episodes (Episode objects, or mappings of field name to an array [frames, size])
    to a new trajectory file; returns how many were written. The frame layout is `fields`, or the
    first episode's fields in their order. Episodes given as plain mappings get episode ids and
    start states 0, 1, 2, ... (branch 0). `timestep` is the physics step (s) and `decimation`
    the physics steps per frame, so a frame lasts timestep x decimation; `model_hash` ties the
    data to a scene (0: none)."""
    if timestep <= 0 or decimation < 1:
        raise ValueError("timestep must be > 0 and decimation >= 1")
    it = iter(episodes)
    writer = None
    count = 0
    try:
        for i, episode in enumerate(it):
            ep = episode if isinstance(episode, Episode) else Episode(
                fields=dict(episode), episode_id=i, start_state=i)
            if writer is None:
                layout = list(fields) if fields is not None else [
                    (name, int(np.asarray(a).reshape(len(a), -1).shape[1]))
                    for name, a in ep.fields.items()]
                header = Header(fields=[(str(n), int(s)) for n, s in layout], timestep=timestep,
                                decimation=decimation, model_name=model_name,
                                model_hash=model_hash, joint_names=list(joint_names),
                                element_names={k: list(v) for k, v in (element_names or {}).items()},
                                writer="ebm (python)")
                writer = Writer(path, header, sync=sync, append=append)
            writer.append(ep)
            count += 1
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise ValueError(f"{path}: no episodes to write")
    return count

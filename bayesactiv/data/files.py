"""Activation datasets on disk: :func:`save` and :func:`open_dataset`.

A ``.nc`` target is written as netCDF (h5netcdf), a ``.zarr`` target as a zarr
store; ``fired`` is bit-packed along ``sample``. The root attribute
``bayesactiv_checksums`` holds a SHA-256 digest of every variable, so that a
damaged file or store (a zarr chunk file lost, say, which zarr would read back as
zeros) is refused instead of read; it is removed again on reading.

A save writes into a temporary folder next to the target and then moves the
result into place atomically (``renameat2`` exchange where Linux offers it), so
that an interrupted save never leaves a half-written target; temporary folders
left by processes that died are cleaned up by the next save to the same target.

Events out of core: in a zarr store ``fired_packed`` is chunked along its packed rows
(:func:`packed_chunk_rows`, about 1 MiB a chunk) and each chunk has its own checksum
(root attribute ``bayesactiv_chunk_checksums``), so a large store can be opened lazily
(:func:`open_dataset`, ``fired`` a dask array whose chunks are checked as they are
read) and written while it is recorded (:class:`EventStream`).

A monitor's history store (:class:`bayesactiv.monitor.FiringMonitor`, ``store=``) is a
``.zarr`` folder holding the marker file :data:`HISTORY_MARKER` and one ordinary store per
epoch (``epoch_000007.zarr``, each written by :func:`save`); :func:`open_dataset` reads it as
the combined history (:func:`is_history_store` tells one apart). The layout is written here
too (:func:`create_history_store`, :func:`remove_stale_epoch_saves`), so one module knows it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import sys
import warnings
from pathlib import Path
from typing import Any, Self

import numpy as np
import xarray as xr

from bayesactiv.data.contract import DatasetError, validate

__all__ = ["EventStream", "check_save_path", "create_history_store", "digest", "epoch_store_name",
           "history_epochs", "history_store_unfinished", "is_history_store", "open_dataset",
           "packed_chunk_rows", "read_history_marker", "remove_stale_epoch_saves", "save"]

_CHECKSUMS = "bayesactiv_checksums"
_CHUNK_CHECKSUMS = "bayesactiv_chunk_checksums"
#: Events x units per stored chunk of ``fired_packed`` (bits; 1 MiB packed).
CHUNK_BITS = 2**23
#: :func:`open_dataset` opens a zarr store lazily when its events, unpacked, exceed this.
LAZY_EVENTS_BYTES = 2**28
_TEMP_MARKER = ".bayesactiv-save.json"
_REPLACED = "replaced"  # where the fallback of _move_into_place keeps the old store meanwhile
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
#: The marker file of a monitor's history store; its JSON holds ``format``, ``version`` and
#: ``monitor`` (the signature of the monitor that writes the history).
HISTORY_MARKER = "bayesactiv_history.json"
HISTORY_FORMAT = "bayesactiv-history"
HISTORY_VERSION = 1
_EPOCH_STORE = re.compile(r"epoch_(\d{6,})\.zarr")


def packed_chunk_rows(n_units: int) -> int:
    """Packed rows (8 events each) per stored chunk of ``fired_packed``, for ``n_units`` units.

    A chunk holds about :data:`CHUNK_BITS` events x units (1 MiB packed), whatever the units.

    Examples
    --------
    >>> packed_chunk_rows(4096), packed_chunk_rows(10**7)
    (256, 1)
    """
    return max(1, CHUNK_BITS // 8 // max(1, int(n_units)))


def _pack_events(fired: xr.DataArray) -> Any:
    """``fired`` bit-packed along ``sample``: numpy in memory, dask chunk by chunk when lazy."""
    from bayesactiv.data.lazy import is_lazy

    if not is_lazy(fired):
        return np.packbits(fired.transpose("sample", "unit").values, axis=0)
    data = fired.transpose("sample", "unit").data
    rows = packed_chunk_rows(data.shape[1])
    data = data.rechunk({0: 8 * rows, 1: -1})  # whole bytes in every chunk but the last
    packed_chunks = tuple(-(-size // 8) for size in data.chunks[0])
    return data.map_blocks(np.packbits, axis=0, dtype=np.uint8, chunks=(packed_chunks, data.chunks[1]))


def _encode(ds: xr.Dataset) -> xr.Dataset:
    """Prepare for disk: bit-pack ``fired`` along ``sample``."""
    out = ds.copy()
    out.attrs.pop(_CHECKSUMS, None)
    out.attrs.pop(_CHUNK_CHECKSUMS, None)
    if "fired" in out.data_vars:
        n_samples = int(out.sizes["sample"])
        packed = _pack_events(out["fired"])
        out = out.drop_vars("fired")
        out["fired_packed"] = (("packed_sample", "unit"), packed)
        out["fired_packed"].attrs["n_samples"] = n_samples
    for name, var in out.variables.items():
        if var.dtype == object:
            out[name] = var.astype(str)
    return out


def _decode(ds: xr.Dataset, path: Path, chunks: tuple[int, list[str]] | None = None) -> xr.Dataset:
    """``fired`` unpacked: in memory, or lazily (``fired_packed`` a dask array; ``chunks``: the
    recorded rows per chunk and chunk digests, checked as each chunk is read)."""
    if "fired_packed" in ds.data_vars:
        n_samples = _packed_samples(ds["fired_packed"], path)
        packed = ds["fired_packed"]
        if hasattr(packed.data, "dask"):
            fired = _lazy_events(packed, n_samples, path, chunks)
        else:
            fired = np.unpackbits(packed.values, axis=0, count=n_samples).view(bool)
        ds = ds.drop_vars("fired_packed")
        ds["fired"] = (("sample", "unit"), fired)
    for name in ("unit", "network", "layer"):
        if name in ds.coords:
            ds = ds.assign_coords({name: ("unit", ds[name].values.astype(str).astype(object))})
    return ds


def _lazy_events(packed: xr.DataArray, n_samples: int, path: Path,
                 chunks: tuple[int, list[str]] | None) -> Any:
    """``fired`` as a dask array unpacked chunk by chunk from ``fired_packed``."""
    units = packed.shape[1]
    rows = chunks[0] if chunks is not None else packed_chunk_rows(units)
    data = packed.data.rechunk({0: rows, 1: -1})
    sizes = [min(8 * size, n_samples - 8 * rows * i) for i, size in enumerate(data.chunks[0])]
    digests = None if chunks is None else chunks[1]
    return data.map_blocks(_unpack_chunk, dtype=bool, chunks=(tuple(sizes), (units,)),
                           rows=rows, n_samples=n_samples, digests=digests, path=str(path))


def _unpack_chunk(packed: np.ndarray, *, rows: int, n_samples: int, digests: list[str] | None,
                  path: str, block_info: dict | None = None) -> np.ndarray:
    """One chunk of ``fired``, unpacked after its checksum is checked."""
    i = block_info[0]["chunk-location"][0] if block_info else 0
    if digests is not None and chunk_digest(packed) != digests[i]:
        raise DatasetError(f"path: {path!r} is damaged or was changed outside bayesactiv: chunk {i} "
                           "of variable 'fired_packed' does not match its checksum")
    count = min(8 * packed.shape[0], n_samples - 8 * rows * i)
    return np.unpackbits(packed, axis=0, count=count).view(bool)


def _packed_samples(packed: xr.DataArray, path: Path) -> int:
    """The number of events bit-packed in ``fired_packed`` (its ``n_samples`` attribute), checked."""
    where = f"in {str(path)!r}"
    if packed.dims != ("packed_sample", "unit"):
        raise DatasetError(f"fired_packed: expected dims ('packed_sample', 'unit') {where}, got {packed.dims}")
    if "n_samples" not in packed.attrs:
        raise DatasetError(f"fired_packed: attribute 'n_samples' (the number of packed events) is missing {where}")
    value = packed.attrs["n_samples"]
    rows = packed.shape[0]
    low, high = max(8 * rows - 7, 0), 8 * rows
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer) or not low <= value <= high:
        shown = value.item() if isinstance(value, np.generic) else value
        raise DatasetError(f"fired_packed: attribute n_samples={shown!r} {where} does not fit its {rows} "
                           f"packed rows (expected an integer from {low} to {high})")
    return int(value)


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".nc":
        return "netcdf"
    if suffix == ".zarr":
        return "zarr"
    raise DatasetError(f"path: unknown format for {str(path)!r}; use a '.nc' or '.zarr' suffix")


def _read(path: Path, fmt: str) -> xr.Dataset:
    """The variables and attributes of a file as stored (``fired`` still packed), in memory."""
    if fmt == "netcdf":
        with xr.open_dataset(path, engine="h5netcdf") as raw:
            return raw.load()
    with xr.open_zarr(path, consolidated=False) as raw:
        return raw.load()


def _open_lazily(path: Path) -> xr.Dataset:
    """A zarr store as stored, every variable loaded but ``fired_packed`` (a dask array)."""
    raw = xr.open_zarr(path, consolidated=False, chunks={})
    small = [name for name in raw.variables if name != "fired_packed"]
    loaded = raw[small].load() if small else xr.Dataset()
    loaded = loaded.assign_attrs(raw.attrs)
    if "fired_packed" in raw.data_vars:
        loaded["fired_packed"] = raw["fired_packed"]
    return loaded


def _write(encoded: xr.Dataset, path: Path, fmt: str) -> None:
    if fmt == "netcdf":
        encoded.to_netcdf(path, engine="h5netcdf")
        return
    if "fired_packed" in encoded.data_vars:
        encoded = encoded.copy()
        units = encoded.sizes["unit"]
        rows = packed_chunk_rows(units)
        packed = encoded["fired_packed"]
        if hasattr(packed.data, "dask"):
            packed = packed.chunk({"packed_sample": rows, "unit": -1})
        encoded["fired_packed"] = packed
        encoded["fired_packed"].encoding = {"chunks": (rows, max(1, units))}
    encoded.to_zarr(path, mode="w", consolidated=False)


def digest(values: np.ndarray) -> str:
    """SHA-256 of an array's shape and values, independent of how a format stores its dtype."""
    values = np.asarray(values)
    sha = hashlib.sha256(repr(values.shape).encode())
    kind = values.dtype.kind
    if kind in "biu":
        canonical = values.astype("<u8" if values.dtype == np.uint64 else "<i8")
    elif kind == "f":
        canonical = np.where(np.isnan(values), np.nan, values).astype("<f8")
    elif kind == "c":
        canonical = values.astype("<c16")
    elif kind in "mM":
        canonical = values.astype(f"{values.dtype.name.split('[')[0]}[ns]").view("<i8")
    else:
        text = "\0".join(map(str, values.ravel().tolist()))
        sha.update(text.encode("utf-8", "surrogatepass"))
        return "sha256:" + sha.hexdigest()
    sha.update(np.ascontiguousarray(canonical).tobytes())
    return "sha256:" + sha.hexdigest()


def chunk_digest(block: np.ndarray) -> str:
    """SHA-256 of a block of ``fired_packed`` (uint8 rows): its shape and bytes.

    Examples
    --------
    >>> chunk_digest(np.zeros((2, 3), dtype=np.uint8))[:7]
    'sha256:'
    """
    sha = hashlib.sha256(repr(block.shape).encode())
    sha.update(np.ascontiguousarray(block, dtype=np.uint8).tobytes())
    return "sha256:" + sha.hexdigest()


def _checksums(ds: xr.Dataset) -> dict[str, str]:
    return {str(name): digest(var.values) for name, var in ds.variables.items()}


def _stored_checksums(path: Path, fmt: str) -> tuple[dict[str, str], dict | None]:
    """The checksums of what was written: every variable's digest and, for a zarr store,
    ``fired_packed``'s per-chunk digests (read back one chunk at a time)."""
    if fmt == "netcdf":
        return _checksums(_read(path, fmt)), None
    whole = _stored_checksums_except_events(path)
    if not (path / "fired_packed").exists():
        return whole, None
    import zarr

    array = zarr.open_array(str(path / "fired_packed"), mode="r")
    return whole, _chunk_checksums(array, packed_chunk_rows(array.shape[1]))


def _chunk_checksums(packed: Any, rows: int) -> dict:
    """Per-chunk digests of ``packed`` (an array of packed rows, read ``rows`` at a time)."""
    total = packed.shape[0]
    digests = [chunk_digest(np.asarray(packed[start:start + rows]))
               for start in range(0, total, rows)]
    return {"fired_packed": {"rows": int(rows), "digests": digests}}


def _write_checksums(path: Path, fmt: str, checksums: dict[str, str],
                     chunks: dict | None = None) -> None:
    text = json.dumps(checksums, sort_keys=True)
    if fmt == "netcdf":
        import h5netcdf

        with h5netcdf.File(path, "a") as file:
            file.attrs[_CHECKSUMS] = text
    else:
        import zarr

        attrs = zarr.open_group(str(path), mode="r+").attrs
        attrs[_CHECKSUMS] = text
        if chunks is not None:
            attrs[_CHUNK_CHECKSUMS] = json.dumps(chunks, sort_keys=True)


def _chunk_record(recorded: Any, packed: xr.DataArray) -> tuple[int, list[str]] | str:
    """The rows per chunk and digests of ``fired_packed`` recorded by a save, checked against
    its shape; a string says what is wrong."""
    try:
        entry = json.loads(recorded)["fired_packed"]
        rows, digests = int(entry["rows"]), list(entry["digests"])
    except (TypeError, ValueError, KeyError):
        return "its chunk checksum attribute is unreadable"
    if rows < 1 or len(digests) != -(-packed.shape[0] // rows):
        return "variable 'fired_packed' does not match its chunk checksums (other number of chunks)"
    return rows, digests


def _damaged_chunks(packed: np.ndarray, rows: int, digests: list[str]) -> str | None:
    bad = [i for i, start in enumerate(range(0, packed.shape[0], rows))
           if chunk_digest(packed[start:start + rows]) != digests[i]]
    if not bad:
        return None
    shown = ", ".join(map(str, bad[:5])) + (" ..." if len(bad) > 5 else "")
    return f"chunks {shown} of variable 'fired_packed' do not match their checksums"


def _damage(raw: xr.Dataset, recorded: Any) -> str | None:
    """What in ``raw`` differs from the checksums ``save`` recorded, in words (None: nothing)."""
    try:
        expected = json.loads(recorded)
    except (TypeError, ValueError):
        expected = None
    if not isinstance(expected, dict):
        return "its checksum attribute is unreadable"
    missing = [name for name in expected if name not in raw.variables]
    changed = [name for name, recorded_digest in expected.items()
               if name in raw.variables and digest(raw[name].values) != recorded_digest]
    problems = []
    if missing:
        problems.append(_listed(missing, "is missing", "are missing"))
    if changed:
        problems.append(_listed(changed, "does not match its checksum", "do not match their checksums"))
    return "; ".join(problems) or None


def _listed(names: list[str], one: str, several: str) -> str:
    quoted = ", ".join(repr(name) for name in names)
    return f"variable {quoted} {one}" if len(names) == 1 else f"variables {quoted} {several}"


def check_save_path(path: str | os.PathLike) -> Path:
    """Check that :func:`save` may write ``path``; call it before long work that ends in a save.

    :func:`save` replaces a file at a ``.nc`` target and a zarr store that
    bayesactiv wrote at a ``.zarr`` target. It refuses, so that nothing else is
    ever deleted: a folder at a ``.nc`` target, a file at a ``.zarr`` target, and a
    ``.zarr`` folder that is not an activation dataset written by bayesactiv.

    Parameters
    ----------
    path : str or path-like
        The target; its suffix (``.nc`` or ``.zarr``) picks the format.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    DatasetError
        Naming the path, when it has an unknown suffix, its folder does not exist
        or it holds something that save must not replace.

    Examples
    --------
    >>> import bayesactiv as ba, tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> ba.dataset.check_save_path(os.path.join(folder, "acts.nc")).name
    'acts.nc'
    >>> os.mkdir(os.path.join(folder, "results.nc"))
    >>> ba.dataset.check_save_path(os.path.join(folder, "results.nc"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    bayesactiv.data.contract.DatasetError: path: '...results.nc' is a folder; save replaces only a file ...
    """
    path = Path(path)
    fmt = _format_of(path)
    if not path.parent.exists():
        raise DatasetError(f"path: directory {str(path.parent)!r} does not exist")
    if not path.parent.is_dir():
        raise DatasetError(f"path: {str(path.parent)!r} is not a directory")
    shown = repr(str(path))
    if fmt == "netcdf":
        if path.is_dir():
            raise DatasetError(f"path: {shown} is a folder; save replaces only a file at a '.nc' "
                               "target (remove the folder or choose another name)")
    elif path.exists():
        if not path.is_dir():
            raise DatasetError(f"path: {shown} is a file, not a zarr store; save refuses to replace it "
                               "(remove it or choose another name)")
        if is_history_store(path):
            raise DatasetError(f"path: {shown} is a monitor's history store (a folder of per-epoch "
                               "stores); save refuses to replace it (remove it or choose another name)")
        if not _written_by_bayesactiv(path):
            raise DatasetError(f"path: {shown} is a folder that is not an activation dataset written by "
                               "bayesactiv; save refuses to replace it (remove it or choose another name)")
    return path


def _written_by_bayesactiv(store: Path) -> bool:
    """Whether ``store`` is a zarr group whose root attributes carry the marks of :func:`save`."""
    import zarr

    try:
        attrs = dict(zarr.open_group(str(store), mode="r").attrs)
    except (OSError, ValueError, TypeError, KeyError):  # not a zarr group it can read: not ours
        return False
    return _CHECKSUMS in attrs or "bayesactiv_version" in attrs


def is_history_store(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a monitor's history store: a folder holding :data:`HISTORY_MARKER`.

    Such a store, written by :class:`bayesactiv.monitor.FiringMonitor`, holds one ordinary
    zarr store per epoch; :func:`open_dataset` reads it as the whole history.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    bool

    Examples
    --------
    >>> import bayesactiv as ba, tempfile, os
    >>> path = ba.save(ba.make_dataset([3], 9, network="a", layer="b"),
    ...                os.path.join(tempfile.mkdtemp(), "x.zarr"))
    >>> is_history_store(path)
    False
    """
    path = Path(path)
    return path.is_dir() and (path / HISTORY_MARKER).is_file()


def epoch_store_name(epoch: int) -> str:
    """The name of epoch ``epoch``'s store in a history store: ``epoch_000007.zarr``."""
    return f"epoch_{int(epoch):06d}.zarr"


def read_history_marker(path: Path) -> dict:
    """The marker of the history store ``path``, checked (a :class:`DatasetError` names it)."""
    marker_path = path / HISTORY_MARKER
    shown = repr(str(marker_path))
    try:
        marker = json.loads(marker_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DatasetError(f"path: {shown}, the marker of a history store, is unreadable ({err})") from err
    if not isinstance(marker, dict) or marker.get("format") != HISTORY_FORMAT \
            or not isinstance(marker.get("monitor"), dict):
        raise DatasetError(f"path: {shown} is not the marker of a bayesactiv history store (expected "
                           f"a JSON object with format {HISTORY_FORMAT!r} and a 'monitor' object)")
    version = marker.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise DatasetError(f"path: {shown} has no valid 'version' (got {version!r})")
    if version > HISTORY_VERSION:
        raise DatasetError(f"path: {shown} is a history store of version {version}, written by a newer "
                           f"bayesactiv (this one reads up to version {HISTORY_VERSION}); upgrade bayesactiv")
    return marker


#: Temporary files of the marker while it is written (``.bayesactiv_history.json.PID.HEX.tmp``).
_MARKER_TEMP = re.compile(rf"\.{re.escape(HISTORY_MARKER)}\.(\d+)\.[0-9a-f]{{8}}\.tmp")
#: Temporary folders of :func:`save` for an epoch's store.
_EPOCH_SAVE_TEMP = re.compile(r"\.(epoch_\d+\.zarr)\.\d+\.[0-9a-f]{8}\.tmp")


def history_store_unfinished(path: Path) -> bool:
    """Whether the folder ``path`` is empty but for temporary files of a marker being written
    (a history store whose creation was interrupted, or a folder made for it)."""
    return all(_MARKER_TEMP.fullmatch(entry.name) for entry in path.iterdir())


def create_history_store(store: Path, signature: dict[str, Any]) -> None:
    """Make ``store`` a history store: the folder, then its marker written atomically.

    Raises
    ------
    DatasetError
        When something else appeared at ``store`` meanwhile (it is not replaced).
    """
    from bayesactiv.version import __version__

    store.mkdir(exist_ok=True)
    if is_history_store(store) or not history_store_unfinished(store):  # (something came)
        raise DatasetError(f"path: {str(store)!r} was created by someone else while this "
                           f"monitor ran; it is not replaced (choose another store)")
    marker = {"format": HISTORY_FORMAT, "version": HISTORY_VERSION, "monitor": signature,
              "bayesactiv_version": __version__}
    tmp = store / f".{HISTORY_MARKER}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(marker, sort_keys=True, indent=1) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, store / HISTORY_MARKER)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    for entry in store.iterdir():  # marker files left by a creation that was killed
        match = _MARKER_TEMP.fullmatch(entry.name)
        if match is not None and not _process_alive(int(match[1])):
            entry.unlink(missing_ok=True)


def remove_stale_epoch_saves(store: Path) -> None:
    """Remove the temporary folders that killed saves of any epoch left in ``store``."""
    targets = {m[1] for m in map(_EPOCH_SAVE_TEMP.fullmatch, os.listdir(store)) if m}
    for name in sorted(targets):
        _remove_stale_temps(store / name)


def history_epochs(path: Path) -> list[tuple[int, Path]]:
    """The epochs whose store is complete in the history store ``path``, in order, with their stores.

    An epoch's store is there only once :func:`save` has moved it into place; hidden entries
    (temporary folders of saves, the marker's temporary files) and other names are skipped.
    """
    found = []
    for entry in path.iterdir():
        match = _EPOCH_STORE.fullmatch(entry.name)
        if match is not None and entry.name == epoch_store_name(int(match[1])):
            found.append((int(match[1]), entry))
    return sorted(found)


def _open_history(path: Path, lazy: bool | None) -> xr.Dataset:
    """The history store ``path``: its epochs' stores, each checked, combined in epoch order."""
    from bayesactiv.data.combine import combine  # (combine imports this module)

    marker = read_history_marker(path)
    epochs = history_epochs(path)
    shown = repr(str(path))
    if not epochs:
        raise DatasetError(f"path: {shown} is a history store with no complete epoch yet")
    if lazy is None:  # as for one store: lazily when the history's events, unpacked, are large
        lazy = 8 * sum(_packed_size(store) for _, store in epochs) > LAZY_EVENTS_BYTES
    signature = json.dumps(marker["monitor"], sort_keys=True)
    parts = []
    for epoch, store in epochs:
        ds = open_dataset(store, lazy=lazy)
        where = f"{str(store)!r} (epoch {epoch} of the history store {shown})"
        stored = ds.attrs.get("monitor")
        try:
            same = stored is not None and json.dumps(json.loads(stored), sort_keys=True) == signature
        except (TypeError, ValueError):
            same = False
        if not same:
            raise DatasetError(f"path: {where} was not written by the monitor its marker names "
                               "(its 'monitor' attribute differs)")
        if "epoch" not in ds.coords or not (ds["epoch"].values == epoch).all():
            raise DatasetError(f"epoch: the units of {where} are not all tagged with epoch {epoch}")
        parts.append(ds)
    try:
        data = parts[0].copy() if len(parts) == 1 else combine(parts, mismatch="raise")
    except DatasetError as err:
        raise DatasetError(f"path: the epochs of the history store {shown} do not line up: {err}") from err
    data.attrs.pop("epoch", None)
    data.attrs["source"] = parts[-1].attrs.get("source", "?")  # (not combine's nesting)
    return validate(data)


def _packed_size(store: Path) -> int:
    """Bytes of the packed events (``fired_packed``) of a zarr store, from its metadata; 0 without."""
    if not (store / "fired_packed").is_dir():
        return 0
    import zarr

    try:
        return int(np.prod(zarr.open_array(str(store / "fired_packed"), mode="r").shape))
    except (OSError, ValueError, TypeError, KeyError):
        return 0  # (open_dataset then names what is wrong)


def save(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write an activation dataset to netCDF (``.nc``) or zarr (``.zarr``), atomically.

    The data go to a temporary folder beside ``path``, named
    ``.NAME.PID.RANDOM.tmp``, and are moved into place only when complete, so no
    half-written file survives an exception or a kill. An existing zarr store is
    swapped with the new one in one step where the system allows it (Linux
    ``renameat2`` with ``RENAME_EXCHANGE``), so the target is never missing;
    elsewhere the old store is moved aside, the new one moved in, and the old
    one put back if that fails. The temporary folder, holding the old store by
    then, is removed last. Temporary folders left by a save that was killed are
    removed by the next save to the same target, once their process is gone.

    Only what :func:`check_save_path` allows is replaced: a file at a ``.nc``
    target, a zarr store written by bayesactiv at a ``.zarr`` target.

    ``fired`` is bit-packed on disk (8 events a byte) and restored as bool. A
    SHA-256 checksum of every variable is stored with the data (root attribute
    ``bayesactiv_checksums``) and checked by :func:`open_dataset`.

    Parameters
    ----------
    ds : xarray.Dataset
        A valid activation dataset.
    path : str or path-like
        Target file; the suffix picks the format.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    DatasetError
        When ``ds`` breaks the contract or ``path`` may not be written (see
        :func:`check_save_path`).

    Examples
    --------
    >>> import bayesactiv as ba, tempfile, os
    >>> ds = ba.make_dataset([1, 2], 10, network="net", layer="fc")
    >>> path = ba.save(ds, os.path.join(tempfile.mkdtemp(), "acts.nc"))
    >>> int(ba.open_dataset(path)["count"].sum())
    3
    """
    validate(ds)
    path = check_save_path(path)
    fmt = _format_of(path)
    encoded = _encode(ds)
    _remove_stale_temps(path)
    tmp_dir = _make_temp_dir(path)
    try:
        tmp = tmp_dir / path.name
        _write(encoded, tmp, fmt)
        _write_checksums(tmp, fmt, *_stored_checksums(tmp, fmt))
        check_save_path(path)  # the target may have changed while the data were written
        _move_into_place(tmp, path, tmp_dir)
    finally:
        if not _holds_the_only_copy(tmp_dir, path):
            _remove_tree(tmp_dir)
    return path


def _make_temp_dir(path: Path) -> Path:
    """A new temporary folder beside ``path``, marked as this process's."""
    tmp_dir = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    tmp_dir.mkdir()
    marker = {"pid": os.getpid(), "host": socket.gethostname(), "target": path.name}
    try:
        (tmp_dir / _TEMP_MARKER).write_text(json.dumps(marker))
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return tmp_dir


def _remove_stale_temps(path: Path) -> None:
    """Remove temporary folders of earlier saves to ``path`` whose process is gone."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.[0-9a-f]{{8}}\.tmp")
    for entry in path.parent.iterdir():
        match = pattern.fullmatch(entry.name)
        if match is None or entry.is_symlink() or not entry.is_dir():
            continue
        pid = int(match[1])
        marker = _read_marker(entry)
        if marker is None:  # killed between creating the folder and marking it: remove it only if empty
            if not _process_alive(pid):
                with contextlib.suppress(OSError):
                    entry.rmdir()
            continue
        ours = marker == {"pid": pid, "host": socket.gethostname(), "target": path.name}
        if ours and not _process_alive(pid) and not _holds_the_only_copy(entry, path):
            _remove_tree(entry)


def _holds_the_only_copy(tmp_dir: Path, path: Path) -> bool:
    """Whether ``tmp_dir`` holds an old store moved aside while ``path`` is missing (never removed)."""
    return (tmp_dir / _REPLACED).exists() and not (path.exists() or path.is_symlink())


def _read_marker(tmp_dir: Path) -> dict | None:
    try:
        marker = json.loads((tmp_dir / _TEMP_MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` may still run (True whenever that cannot be ruled out)."""
    if pid == os.getpid() or sys.platform == "win32":  # on Windows, os.kill would end the process
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # PermissionError: it runs, as another user
        return True
    return True


def _remove_tree(tmp_dir: Path) -> None:
    """Remove a temporary folder of :func:`save`, its marker last (so a partial removal stays recognisable)."""
    with contextlib.suppress(OSError):
        for entry in tmp_dir.iterdir():
            if entry.name == _TEMP_MARKER:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        if all(entry.name == _TEMP_MARKER for entry in tmp_dir.iterdir()):
            (tmp_dir / _TEMP_MARKER).unlink(missing_ok=True)
            tmp_dir.rmdir()


def _move_into_place(src: Path, dst: Path, tmp_dir: Path) -> None:
    """Move the new ``src`` onto ``dst``; an old store at ``dst`` ends up inside ``tmp_dir``."""
    if not src.is_dir():  # a file: one atomic rename, which also removes the old file
        os.replace(src, dst)
        return
    if not (dst.exists() or dst.is_symlink()):
        if not _renameat2(src, dst, _RENAME_NOREPLACE):
            os.rename(src, dst)
        return
    if _renameat2(src, dst, _RENAME_EXCHANGE):  # dst is never missing; the old store is now at src
        return
    old = tmp_dir / _REPLACED
    os.rename(dst, old)
    try:
        os.rename(src, dst)
    except BaseException:
        os.rename(old, dst)
        raise


@functools.cache
def _renameat2_function() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2  # glibc >= 2.28
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def _renameat2(src: Path, dst: Path, flags: int) -> bool:
    """Rename with Linux ``renameat2`` flags; False when the system or file system lacks it."""
    function = _renameat2_function()
    if function is None:
        return False
    if function(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(src), None, str(dst))


class EventStream:
    """Write the ``fired`` events to a zarr store while they are recorded; the rest at the end.

    :func:`bayesactiv.record` with ``keep_events=True, store=...`` uses it. The events
    (bool, events x units) arrive batch by batch; they are bit-packed and written a chunk
    (:func:`packed_chunk_rows`) at a time, with each chunk's checksum, into a temporary
    store beside the target, so that memory holds at most one chunk of events. When the
    recording is done, :meth:`finish` writes the other variables into the same store and
    moves it into place as :func:`save` does (atomically; only over what :func:`save` may
    replace). On an exception the temporary store is removed and the target is untouched.

    Parameters
    ----------
    path : str or path-like
        The target ``.zarr`` store (checked with :func:`check_save_path` at once).

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba, tempfile, os
    >>> from bayesactiv.data.files import EventStream
    >>> fired = np.eye(30, 2, dtype=bool)
    >>> target = os.path.join(tempfile.mkdtemp(), "events.zarr")
    >>> with EventStream(target) as stream:
    ...     for start in range(0, 30, 8):
    ...         stream.append(fired[start:start + 8])
    ...     ds = ba.make_dataset(fired.sum(0), 30, network="n", layer="l", fired=stream.events())
    ...     path = stream.finish(ds)
    >>> ba.open_dataset(path)["fired"].values.sum(0).tolist()
    [1, 1]
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = check_save_path(path)
        if _format_of(self.path) != "zarr":
            raise DatasetError(f"store: expected a '.zarr' path, got {str(self.path)!r} (events are "
                               "streamed to a zarr store)")
        self.tmp_dir: Path | None = None
        self.array: Any = None
        self.rows = 0
        self.pending: list[np.ndarray] = []
        self.n_pending = 0
        self.n_samples = 0
        self.digests: list[str] = []

    def __enter__(self) -> Self:
        _remove_stale_temps(self.path)
        self.tmp_dir = _make_temp_dir(self.path)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.tmp_dir is not None and not _holds_the_only_copy(self.tmp_dir, self.path):
            _remove_tree(self.tmp_dir)
        self.tmp_dir = None

    @property
    def store(self) -> Path:
        if self.tmp_dir is None:
            raise RuntimeError("EventStream: use it as a context manager (with EventStream(...) as s)")
        return self.tmp_dir / self.path.name

    def append(self, events: np.ndarray) -> None:
        """Add the next events (bool, events x units), in order."""
        events = np.asarray(events)
        if events.dtype != bool or events.ndim != 2:
            raise DatasetError(f"fired: expected a 2-d bool array (events x units), got "
                               f"{events.dtype} of shape {events.shape}")
        if self.array is None:
            self._create(events.shape[1])
        if events.shape[1] != self.array.shape[1]:
            raise DatasetError(f"fired: {events.shape[1]} units in these events, "
                               f"{self.array.shape[1]} before")
        self.pending.append(events)
        self.n_pending += events.shape[0]
        self.n_samples += events.shape[0]
        per_chunk = 8 * self.rows
        if self.n_pending >= per_chunk:
            block = np.concatenate(self.pending)
            full = (self.n_pending // per_chunk) * per_chunk
            self._write(block[:full])
            rest = block[full:]
            self.pending, self.n_pending = ([rest] if rest.shape[0] else []), rest.shape[0]

    def _create(self, units: int) -> None:
        import zarr

        self.rows = packed_chunk_rows(units)
        group = zarr.open_group(str(self.store), mode="w")
        self.array = group.create_array("fired_packed", shape=(0, units), dtype="uint8",
                                        chunks=(self.rows, max(1, units)),
                                        dimension_names=("packed_sample", "unit"))

    def _write(self, events: np.ndarray) -> None:
        packed = np.packbits(events, axis=0)
        for start in range(0, packed.shape[0], self.rows):
            self.digests.append(chunk_digest(packed[start:start + self.rows]))
        self.array.append(packed, axis=0)

    def events(self, n_units: int | None = None) -> Any:
        """All the events appended, as a dask array read from the temporary store.

        ``n_units``: the units, needed only when no events were appended."""
        if self.array is None:
            if n_units is None:
                raise DatasetError("fired: no events were recorded, and the number of units is unknown")
            self._create(n_units)
        if self.pending:
            self._write(np.concatenate(self.pending))
            self.pending, self.n_pending = [], 0
        self.array.attrs["n_samples"] = int(self.n_samples)
        import dask.array as da

        packed = xr.DataArray(da.from_zarr(self.array), dims=("packed_sample", "unit"))
        return _lazy_events(packed, self.n_samples, self.store, (self.rows, self.digests))

    def finish(self, ds: xr.Dataset) -> Path:
        """Write ``ds`` (whose ``fired`` is :meth:`events`) into the store and move it into place.

        Returns the target path; ``ds``'s ``fired`` must not be used after (its store moved)."""
        validate(ds)
        if "fired" not in ds.data_vars or ds.sizes["sample"] != self.n_samples:
            raise DatasetError("fired: the dataset's events are not the ones streamed")
        encoded = _encode(ds.drop_vars("fired"))
        encoded.to_zarr(self.store, mode="a", consolidated=False)
        whole = _stored_checksums_except_events(self.store)
        chunks = {"fired_packed": {"rows": int(self.rows), "digests": self.digests}}
        _write_checksums(self.store, "zarr", whole, chunks)
        check_save_path(self.path)  # the target may have changed while the events were written
        _move_into_place(self.store, self.path, self.store.parent)
        return self.path


def _stored_checksums_except_events(path: Path) -> dict[str, str]:
    """The digest of every variable of a zarr store but ``fired_packed`` (checked per chunk)."""
    raw = _open_lazily(path)
    return {str(name): digest(var.values) for name, var in raw.variables.items()
            if name != "fired_packed"}


def open_dataset(path: str | os.PathLike, *, lazy: bool | None = None) -> xr.Dataset:
    """Read an activation dataset written by :func:`save`, check it and validate it.

    The checksums that :func:`save` stored are compared with the data read, so a
    damaged file or store is refused instead of read (zarr, for one, reads a lost
    chunk file as zeros). A file without checksums (written by an older
    bayesactiv, or by another program) is read without that check; for a zarr
    store, where lost chunks would go unnoticed, a warning says so.

    A monitor's history store (a folder of per-epoch stores, :func:`is_history_store`) is
    read as the whole history: every epoch's store is checked as above (a damaged one raises
    :class:`DatasetError` naming its path) and the epochs are combined in order
    (:func:`bayesactiv.data.combine`, refusing anything that does not line up), their units
    tagged with their ``epoch``. ``lazy`` applies to every epoch's store; its default looks at
    the events of the whole history.

    A zarr store can be opened lazily: every variable is read but ``fired``, which
    becomes a dask array chunked along ``sample`` (about 1 MiB of packed events a
    chunk), unpacked chunk by chunk when computed; each chunk is checked against its
    checksum as it is read (a damaged chunk raises :class:`DatasetError` then). The
    statistics that read events run on it block by block (:mod:`bayesactiv.data.lazy`).

    Parameters
    ----------
    path : str or path-like
        A ``.nc`` file, a ``.zarr`` store or a monitor's ``.zarr`` history store.
    lazy : bool, optional
        Open ``fired`` lazily. Default: for a zarr store whose events take more than
        :data:`LAZY_EVENTS_BYTES` (256 MiB) unpacked. ``True`` needs a zarr store.

    Returns
    -------
    xarray.Dataset
        ``fired`` unpacked to bool, in memory or (lazily) a dask array.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    DatasetError
        When it cannot be read, does not match its checksums (the message names
        the path and the variables) or breaks the contract, or ``lazy=True`` for a
        netCDF file.

    Examples
    --------
    >>> import bayesactiv as ba, numpy as np, tempfile, os
    >>> path = ba.save(ba.make_dataset([3], 9, network="a", layer="b"),
    ...                os.path.join(tempfile.mkdtemp(), "x.zarr"))
    >>> ba.open_dataset(path)["unit"].values.tolist()
    ['a/b/0']
    >>> fired = np.eye(20, 3, dtype=bool)
    >>> path = ba.save(ba.make_dataset(fired.sum(0), 20, network="a", layer="b", fired=fired),
    ...                os.path.join(tempfile.mkdtemp(), "events.zarr"))
    >>> ds = ba.open_dataset(path, lazy=True)
    >>> type(ds["fired"].data).__name__, ds["fired"].sum("sample").values.tolist()
    ('Array', [1, 1, 1])
    """
    path = Path(path)
    fmt = _format_of(path)
    if lazy is not None and not isinstance(lazy, bool):
        raise TypeError(f"lazy: expected True, False or None, got {lazy!r}")
    if lazy and fmt != "zarr":
        raise DatasetError(f"lazy: {str(path)!r} is a netCDF file; only a '.zarr' store is read "
                           "lazily (save it to a .zarr store first)")
    if not path.exists():
        raise FileNotFoundError(f"path: no such file {str(path)!r}")
    if fmt == "zarr" and is_history_store(path):
        return _open_history(path, lazy)
    try:
        raw = _open_lazily(path) if fmt == "zarr" else _read(path, fmt)
        if lazy is None:
            lazy = fmt == "zarr" and "fired_packed" in raw.data_vars and \
                8 * raw["fired_packed"].size > LAZY_EVENTS_BYTES
        if not lazy:
            raw = raw.load()
    except (OSError, ValueError, KeyError) as err:
        raise DatasetError(f"path: {str(path)!r} is not a readable {fmt} activation dataset ({err})") from err
    recorded = raw.attrs.pop(_CHECKSUMS, None)
    chunk_recorded = raw.attrs.pop(_CHUNK_CHECKSUMS, None)
    damage = None if recorded is None else _damage(raw, recorded)
    chunks = None
    if chunk_recorded is not None and "fired_packed" in raw.data_vars:
        chunks = _chunk_record(chunk_recorded, raw["fired_packed"])
        if isinstance(chunks, str):
            damage, chunks = "; ".join(filter(None, [damage, chunks])), None
        elif not lazy:
            bad = _damaged_chunks(raw["fired_packed"].values, *chunks)
            damage = "; ".join(filter(None, [damage, bad])) or None
    if recorded is None and fmt == "zarr":
        warnings.warn(f"path: {str(path)!r} carries no checksums (written by an older bayesactiv or another "
                      "program), so lost chunk files, which zarr reads as zeros, cannot be detected; "
                      "save it again to add them", UserWarning, stacklevel=2)
    elif lazy and chunks is None and "fired_packed" in raw.data_vars and not damage \
            and '"fired_packed"' not in str(recorded):  # (an older store's whole-variable checksum)
        warnings.warn(f"path: {str(path)!r} has no per-chunk checksums of its events (written by an "
                      "older bayesactiv), so its events are read lazily unchecked; save it again to "
                      "add them", UserWarning, stacklevel=2)
    damaged = f"{str(path)!r} is damaged or was changed outside bayesactiv: {damage}"
    try:
        ds = validate(_decode(raw, path, chunks if lazy else None))
    except DatasetError as err:
        if damage:
            raise DatasetError(f"{err} ({damaged})") from err
        raise
    if damage:
        raise DatasetError(f"path: {damaged}")
    return ds

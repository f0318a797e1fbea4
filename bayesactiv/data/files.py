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
from typing import Any

import numpy as np
import xarray as xr

from bayesactiv.data.contract import DatasetError, validate

__all__ = ["check_save_path", "digest", "open_dataset", "save"]

_CHECKSUMS = "bayesactiv_checksums"
_TEMP_MARKER = ".bayesactiv-save.json"
_REPLACED = "replaced"  # where the fallback of _move_into_place keeps the old store meanwhile
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2


def _encode(ds: xr.Dataset) -> xr.Dataset:
    """Prepare for disk: bit-pack ``fired`` along ``sample``."""
    out = ds.copy()
    out.attrs.pop(_CHECKSUMS, None)
    if "fired" in out.data_vars:
        fired = out["fired"].values
        packed = np.packbits(fired, axis=0)
        out = out.drop_vars("fired")
        out["fired_packed"] = (("packed_sample", "unit"), packed)
        out["fired_packed"].attrs["n_samples"] = int(fired.shape[0])
    for name, var in out.variables.items():
        if var.dtype == object:
            out[name] = var.astype(str)
    return out


def _decode(ds: xr.Dataset, path: Path) -> xr.Dataset:
    if "fired_packed" in ds.data_vars:
        n_samples = _packed_samples(ds["fired_packed"], path)
        fired = np.unpackbits(ds["fired_packed"].values, axis=0, count=n_samples).astype(bool)
        ds = ds.drop_vars("fired_packed")
        ds["fired"] = (("sample", "unit"), fired)
    for name in ("unit", "network", "layer"):
        if name in ds.coords:
            ds = ds.assign_coords({name: ("unit", ds[name].values.astype(str).astype(object))})
    return ds


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


def _write(encoded: xr.Dataset, path: Path, fmt: str) -> None:
    if fmt == "netcdf":
        encoded.to_netcdf(path, engine="h5netcdf")
    else:
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


def _checksums(ds: xr.Dataset) -> dict[str, str]:
    return {str(name): digest(var.values) for name, var in ds.variables.items()}


def _write_checksums(path: Path, fmt: str, checksums: dict[str, str]) -> None:
    text = json.dumps(checksums, sort_keys=True)
    if fmt == "netcdf":
        import h5netcdf

        with h5netcdf.File(path, "a") as file:
            file.attrs[_CHECKSUMS] = text
    else:
        import zarr

        zarr.open_group(str(path), mode="r+").attrs[_CHECKSUMS] = text


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
        _write_checksums(tmp, fmt, _checksums(_read(tmp, fmt)))
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


def open_dataset(path: str | os.PathLike) -> xr.Dataset:
    """Read an activation dataset written by :func:`save`, check it and validate it.

    The checksums that :func:`save` stored are compared with the data read, so a
    damaged file or store is refused instead of read (zarr, for one, reads a lost
    chunk file as zeros). A file without checksums (written by an older
    bayesactiv, or by another program) is read without that check; for a zarr
    store, where lost chunks would go unnoticed, a warning says so.

    Parameters
    ----------
    path : str or path-like
        A ``.nc`` file or ``.zarr`` store.

    Returns
    -------
    xarray.Dataset
        Loaded into memory, ``fired`` unpacked to bool.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    DatasetError
        When it cannot be read, does not match its checksums (the message names
        the path and the variables) or breaks the contract.

    Examples
    --------
    >>> import bayesactiv as ba, tempfile, os
    >>> path = ba.save(ba.make_dataset([3], 9, network="a", layer="b"),
    ...                os.path.join(tempfile.mkdtemp(), "x.zarr"))
    >>> ba.open_dataset(path)["unit"].values.tolist()
    ['a/b/0']
    """
    path = Path(path)
    fmt = _format_of(path)
    if not path.exists():
        raise FileNotFoundError(f"path: no such file {str(path)!r}")
    try:
        raw = _read(path, fmt)
    except (OSError, ValueError, KeyError) as err:
        raise DatasetError(f"path: {str(path)!r} is not a readable {fmt} activation dataset ({err})") from err
    recorded = raw.attrs.pop(_CHECKSUMS, None)
    damage = None if recorded is None else _damage(raw, recorded)
    if recorded is None and fmt == "zarr":
        warnings.warn(f"path: {str(path)!r} carries no checksums (written by an older bayesactiv or another "
                      "program), so lost chunk files, which zarr reads as zeros, cannot be detected; "
                      "save it again to add them", UserWarning, stacklevel=2)
    damaged = f"{str(path)!r} is damaged or was changed outside bayesactiv: {damage}"
    try:
        ds = validate(_decode(raw, path))
    except DatasetError as err:
        if damage:
            raise DatasetError(f"{err} ({damaged})") from err
        raise
    if damage:
        raise DatasetError(f"path: {damaged}")
    return ds

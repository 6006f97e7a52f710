"""Download RAVDESS speech from Zenodo: resumable, checksum-verified, safely extracted, idempotent.
(:func:`fetch_member` fetches one file out of an archive the same way: the voice encoder's weights.)

``python -m ser_lib download --root dataset/RAVDESS`` fetches ``Audio_Speech_Actors_01-24.zip``
(Zenodo record 1188976, about 208 MB) into ``ROOT/.download/``, resuming a partial file with an
HTTP range request, and checks its MD5. Before anything is written, every archive entry is checked:
no path may leave the target folder, and the declared sizes must fit a limit (a "zip bomb" is
refused). Extraction never deletes or replaces a file: each clip is written to a staging folder
inside the target (the same file system) and moved in only where no file of that name exists; files already there are
compared with the archive's checksum of them and kept as they are. A marker file records a finished
extraction, so running the command again does nothing. An archive whose checksum is wrong is kept,
renamed, never deleted; an archive you put into ``ROOT/.download/`` yourself stays there.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import stat
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass, field
from http.client import HTTPException
from pathlib import Path, PurePosixPath

from tqdm import tqdm

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

from ..errors import ChecksumError, DownloadError, UnsafeArchiveError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resource:
    """A downloadable archive and its checksum."""

    url: str
    filename: str
    md5: str
    size: int | None = None
    licence: str = ""


RAVDESS_SPEECH = Resource(
    url="https://zenodo.org/records/1188976/files/Audio_Speech_Actors_01-24.zip?download=1",
    filename="Audio_Speech_Actors_01-24.zip",
    md5="bc696df654c87fed845eb13823edef8a",
    size=208_468_073,
    licence="CC BY-NC-SA 4.0 (Livingstone & Russo, 2018, PLoS ONE 13(5): e0196391)",
)

MARKER = ".ser_download.json"
_STAGING = ".extracting"
_DOWNLOADS = ".download"
_CHUNK = 1 << 16


#: Largest total size an archive may unpack to by default (RAVDESS speech unpacks to about 0.6 GB).
MAX_EXTRACT_BYTES = 2_000_000_000
#: Largest compression ratio of one entry (audio compresses a few times at most; zip bombs 1000x).
MAX_RATIO = 100


def download(root: str | Path, resource: Resource = RAVDESS_SPEECH, *, retries: int = 5,
             timeout: float = 60.0, keep_archive: bool = False, progress: bool = True,
             max_bytes: int = MAX_EXTRACT_BYTES) -> Path:
    """Fetch, verify and extract ``resource`` into ``root``; return ``root``.

    Does nothing when ``root`` already holds a verified extraction of the same archive. A transfer
    that breaks off is resumed (up to ``retries`` times here, and by the next call otherwise).
    """
    root = Path(root).expanduser()
    if is_complete(root, resource):
        log.info("%s is already downloaded and extracted in %s", resource.filename, root)
        return root
    root.mkdir(parents=True, exist_ok=True)
    supplied = (root / _DOWNLOADS / resource.filename).exists()  # copied there by the user: never deleted
    archive = fetch(resource, root / _DOWNLOADS, retries=retries, timeout=timeout, progress=progress)
    result = extract(archive, root, progress=progress, max_bytes=max_bytes)
    (root / MARKER).write_text(json.dumps({
        "archive": resource.filename, "md5": resource.md5, "url": resource.url, "files": result.files,
        "added": len(result.added), "already_there": len(result.verified) + len(result.differing),
        "differing": result.differing, "extracted_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }, indent=2))
    if not keep_archive and not supplied:
        archive.unlink()
        _remove_if_empty(root / _DOWNLOADS)
    log.info("extracted %d new files into %s (%d were there already)", len(result.added), root,
             len(result.verified) + len(result.differing))
    if result.differing:
        log.warning("%d files in %s differ from the archive and were kept as they are (e.g. %s); delete them "
                    "and run again to get the originals", len(result.differing), root, result.differing[0])
    return root


def is_complete(root: Path, resource: Resource) -> bool:
    """True when ``root`` has the marker of a finished extraction of ``resource`` and its files."""
    marker = Path(root) / MARKER
    if not marker.exists():
        return False
    try:
        info = json.loads(marker.read_text())
    except (json.JSONDecodeError, OSError):
        return False
    if info.get("md5") != resource.md5:
        return False
    present = sum(1 for p in Path(root).glob("Actor_*/*") if p.is_file())
    return present >= int(info.get("files", 0))


def fetch(resource: Resource, folder: Path, *, retries: int = 5, timeout: float = 60.0,
          progress: bool = True) -> Path:
    """Download ``resource`` into ``folder`` with resume and verify its MD5; return the archive path.

    The transfer goes to ``NAME.part``; an interruption leaves it there and the next attempt asks
    the server for the rest (HTTP ``Range``). An archive whose checksum is wrong (downloaded, or
    already in ``folder``) is renamed aside, never deleted, and :class:`ChecksumError` says so.
    """
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / resource.filename
    if target.exists():
        _verify(target, resource, supplied=True)
        return target
    part = folder / (resource.filename + ".part")
    attempt = 0
    while True:
        try:
            _transfer(resource, part, timeout=timeout, progress=progress)
            break
        except (urllib.error.URLError, HTTPException, ConnectionError, TimeoutError) as err:
            if isinstance(err, urllib.error.HTTPError) and err.code not in (408, 429, 500, 502, 503, 504):
                raise DownloadError(f"the server refused {resource.url}: HTTP {err.code} {err.reason}") from None
            if isinstance(err, urllib.error.URLError) and isinstance(err.reason, socket.gaierror):
                raise DownloadError(
                    f"cannot reach {urllib.parse.urlsplit(resource.url).netloc} ({err.reason}); check the "
                    f"internet connection, or copy the archive to {folder / resource.filename} and run again"
                ) from None
            attempt += 1
            have = part.stat().st_size if part.exists() else 0
            if attempt > retries:
                raise DownloadError(
                    f"download of {resource.filename} stopped at {have / 1e6:.1f} MB ({err}). "
                    f"The partial file is kept in {part}; run the same command again to resume."
                ) from None
            wait = min(30.0, 0.5 * 2 ** (attempt - 1))
            log.warning("transfer interrupted at %.1f MB (%s); resuming in %.1f s (attempt %d of %d)",
                        have / 1e6, err, wait, attempt, retries)
            time.sleep(wait)
    _verify(part, resource, supplied=False)
    part.replace(target)
    return target


def _verify(path: Path, resource: Resource, supplied: bool) -> None:
    """:class:`ChecksumError` for an archive whose MD5 is not the expected one; the file is kept,
    renamed to ``NAME.md5-FOUND.rejected`` beside it, so nothing is lost and the next run starts afresh."""
    actual = file_digest(path)
    if actual == resource.md5:
        return
    aside = path.with_name(f"{resource.filename}.md5-{actual}.rejected")
    path.replace(aside)
    where = (f"The archive at {path} (copied there by you)" if supplied else
             f"The downloaded {resource.filename}")
    raise ChecksumError(
        f"{where} has MD5 {actual}, but {resource.md5} was expected: it is incomplete, damaged, or another "
        f"file. It is kept as {aside}. Copy a complete {resource.filename} to {path} and run again, or run "
        f"again without it to download it afresh; for another archive on purpose, give its checksum with --md5."
    )


def _transfer(resource: Resource, part: Path, *, timeout: float, progress: bool) -> None:
    """One HTTP request that appends the missing bytes of ``resource`` to ``part``."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(resource.url, headers={"User-Agent": "ser-course"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # nothing left to send: the partial file is already whole
            return
        raise
    with response:
        if have and response.status != 206:
            log.info("server ignored the resume request; downloading from the start")
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else resource.size
        mode = "ab" if have else "wb"
        received = 0
        with open(part, mode) as f, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                        unit_divisor=1024, desc=resource.filename,
                                        disable=not progress) as bar:
            while True:
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                f.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if length is not None and received < int(length):
            raise ConnectionError(f"connection closed after {received} of {length} bytes")


def file_digest(path: Path, algorithm: str = "md5") -> str:
    """MD5 (or another ``hashlib`` algorithm's digest) of a file, read in 1 MB chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """Every entry of ``archive`` if all are safe to extract, else :class:`UnsafeArchiveError`.

    Rejected: absolute paths, drive letters, ``..`` components and symbolic links, any of which
    could write outside the target folder.
    """
    members = archive.infolist()
    for info in members:
        name = info.filename.replace("\\", "/")
        path = PurePosixPath(name)
        mode = info.external_attr >> 16
        if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
            raise UnsafeArchiveError(f"archive entry {info.filename!r} has an absolute path; nothing was extracted")
        if ".." in path.parts:
            raise UnsafeArchiveError(f"archive entry {info.filename!r} climbs out of the target folder; "
                                     f"nothing was extracted")
        if stat.S_ISLNK(mode):
            raise UnsafeArchiveError(f"archive entry {info.filename!r} is a symbolic link; nothing was extracted")
    return members


def check_sizes(members: list[zipfile.ZipInfo], max_bytes: int = MAX_EXTRACT_BYTES) -> None:
    """:class:`UnsafeArchiveError` when the entries declare more than ``max_bytes`` in all, or one of them
    expands more than :data:`MAX_RATIO` times (a "zip bomb"), before anything is written."""
    total = sum(m.file_size for m in members)
    if total > max_bytes:
        raise UnsafeArchiveError(
            f"the archive unpacks to {total / 1e9:.2f} GB, more than the limit of {max_bytes / 1e9:.2f} GB "
            f"(RAVDESS speech unpacks to about 0.6 GB); nothing was extracted. If you trust this archive, "
            f"raise the limit with --max_extract_gb")
    for m in members:
        if m.file_size and (not m.compress_size or m.file_size / m.compress_size > MAX_RATIO):
            ratio = m.file_size / max(m.compress_size, 1)
            raise UnsafeArchiveError(f"archive entry {m.filename!r} would expand {ratio:.0f} times (audio expands "
                                     f"a few times at most: a zip bomb?); nothing was extracted")


@dataclass
class Extraction:
    """What :func:`extract` did with each file of the archive's ``Actor_XX`` folders (relative paths)."""

    files: int
    added: list[str] = field(default_factory=list)
    verified: list[str] = field(default_factory=list)   # already there, the same bytes as in the archive
    differing: list[str] = field(default_factory=list)  # already there, other bytes: kept as they are


def _actor_path(name: str) -> PurePosixPath | None:
    """``Actor_XX/...`` of an archive entry in an actor folder (at any depth), else None."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    for i, part in enumerate(parts[:-1]):
        if re.fullmatch(r"Actor_\d{2}", part):
            return PurePosixPath(*parts[i:])
    return None


def extract(archive_path: Path, root: Path, *, progress: bool = True, max_bytes: int = MAX_EXTRACT_BYTES
            ) -> Extraction:
    """Extract the ``Actor_XX`` folders of a RAVDESS zip into ``root``, all or nothing, deleting nothing.

    Entries are checked first (:func:`check_members`, :func:`check_sizes`). Each file is written to a
    staging folder inside ``root`` and moved in only where no file of that name exists; files that
    are there already are compared with the archive (CRC-32) and kept. If anything fails, the files
    this call added are removed again.
    """
    staging = root / f"{_STAGING}-{os.getpid()}"
    added: list[Path] = []
    try:
        with zipfile.ZipFile(archive_path) as archive:
            members = [m for m in check_members(archive) if not m.is_dir()]
            check_sizes(members, max_bytes)
            wanted = [(m, rel) for m in members if (rel := _actor_path(m.filename)) is not None]
            if not wanted:
                raise DownloadError(f"{archive_path.name} holds no Actor_XX folders; is it the RAVDESS speech archive?")
            result = Extraction(files=len(wanted))
            staging.mkdir(parents=True, exist_ok=True)
            for info, rel in tqdm(wanted, desc="extracting", unit="file", disable=not progress):
                destination = root / rel
                if destination.exists():
                    (result.verified if _crc32(destination) == info.CRC else result.differing).append(str(rel))
                    continue
                _copy_member(archive, info, staging / "entry.part")
                destination.parent.mkdir(parents=True, exist_ok=True)
                (staging / "entry.part").replace(destination)
                added.append(destination)
                result.added.append(str(rel))
    except BaseException as err:
        for path in added:
            path.unlink(missing_ok=True)
        for folder in sorted({p.parent for p in added}, reverse=True):
            _remove_if_empty(folder)
        if isinstance(err, zipfile.BadZipFile):
            raise DownloadError(f"{archive_path} is not a valid zip archive ({err}); delete it and download "
                                f"again") from None
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return result


def fetch_member(resource: Resource, member: str, target: Path, *, sha256: str | None = None, retries: int = 5,
                 timeout: float = 60.0, progress: bool = True) -> Path:
    """Download ``resource`` (a zip: a wheel, say) with resume and checksum, and keep one of its entries as
    ``target`` (checked against ``sha256`` when given); return ``target``.

    The archive goes to ``TARGET_FOLDER/.download/`` (one you put there yourself is used and kept), its entries
    are checked as :func:`extract` checks them, and the entry is written beside ``target`` and renamed into
    place, so an interruption never leaves half a file under that name. A downloaded archive is deleted after.
    Processes that ask at once take turns (``.TARGET.lock`` beside it): the second finds ``target`` there.
    """
    folder = target.parent / _DOWNLOADS
    folder.mkdir(parents=True, exist_ok=True)
    with _exclusive(target.with_name(f".{target.name}.lock")):
        if target.is_file():
            return target
        try:
            _take_member(resource, member, target, sha256, retries=retries, timeout=timeout, progress=progress)
        finally:
            _remove_if_empty(folder)
    return target


def _take_member(resource: Resource, member: str, target: Path, sha256: str | None, **fetch_options) -> None:
    folder = target.parent / _DOWNLOADS
    supplied = (folder / resource.filename).exists()
    archive_path = fetch(resource, folder, **fetch_options)
    part = target.with_name(target.name + f".{os.getpid()}.part")
    try:
        with zipfile.ZipFile(archive_path) as archive:
            members = {m.filename: m for m in check_members(archive)}
            if member not in members:
                raise DownloadError(f"{archive_path} holds no {member}; is it {resource.filename}?")
            check_sizes([members[member]])
            _copy_member(archive, members[member], part)
        if sha256 and (found := file_digest(part, "sha256")) != sha256:
            raise ChecksumError(f"{member} in {archive_path.name} has SHA-256 {found}, but {sha256} was expected")
        part.replace(target)
    except zipfile.BadZipFile as err:
        raise DownloadError(f"{archive_path} is not a valid zip archive ({err})") from None
    finally:
        part.unlink(missing_ok=True)
        if not supplied:  # a downloaded archive is not kept, whether its member was taken or refused
            archive_path.unlink(missing_ok=True)


@contextlib.contextmanager
def _exclusive(lock: Path):
    """Holds an exclusive lock on the file ``lock`` (created if missing) for the ``with`` block."""
    with open(lock, "a+b") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        else:  # Windows: lock the first byte, retrying until the holder lets go
            while True:
                try:
                    msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)
                    break
                except OSError:
                    time.sleep(0.5)
        yield


def _copy_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> None:
    """Stream one entry to ``target``, stopping if it yields more than it declared."""
    written = 0
    with archive.open(info) as source, open(target, "wb") as out:
        while chunk := source.read(_CHUNK):
            written += len(chunk)
            if written > info.file_size:
                raise UnsafeArchiveError(f"archive entry {info.filename!r} holds more than the {info.file_size} "
                                         f"bytes it declares; nothing was kept")
            out.write(chunk)


def _crc32(path: Path) -> int:
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            crc = zlib.crc32(chunk, crc)
    return crc


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass

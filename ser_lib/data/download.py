"""Download RAVDESS speech from Zenodo: resumable, checksum-verified, safely extracted, idempotent.

``python -m ser_lib download --root dataset/RAVDESS`` fetches ``Audio_Speech_Actors_01-24.zip``
(Zenodo record 1188976, about 208 MB) into ``ROOT/.download/``, resuming a partial file with an
HTTP range request, checks its MD5, validates every archive entry before writing anything, extracts
into a staging folder and only then moves the ``Actor_XX`` folders into place. A marker file records
a finished extraction, so running the command again does nothing.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import socket
import stat
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path, PurePosixPath

from tqdm import tqdm

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


def download(root: str | Path, resource: Resource = RAVDESS_SPEECH, *, retries: int = 5,
             timeout: float = 60.0, keep_archive: bool = False, progress: bool = True) -> Path:
    """Fetch, verify and extract ``resource`` into ``root``; return ``root``.

    Does nothing when ``root`` already holds a verified extraction of the same archive. A transfer
    that breaks off is resumed (up to ``retries`` times here, and by the next call otherwise).
    """
    root = Path(root).expanduser()
    if is_complete(root, resource):
        log.info("%s is already downloaded and extracted in %s", resource.filename, root)
        return root
    root.mkdir(parents=True, exist_ok=True)
    archive = fetch(resource, root / _DOWNLOADS, retries=retries, timeout=timeout, progress=progress)
    members = extract(archive, root, progress=progress)
    (root / MARKER).write_text(json.dumps({
        "archive": resource.filename, "md5": resource.md5, "url": resource.url,
        "files": len(members), "extracted_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }, indent=2))
    if not keep_archive:
        archive.unlink()
        _remove_if_empty(root / _DOWNLOADS)
    log.info("extracted %d files into %s", len(members), root)
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
    the server for the rest (HTTP ``Range``). A finished file whose checksum is wrong is deleted
    (it cannot be repaired by resuming) and :class:`ChecksumError` is raised.
    """
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / resource.filename
    if target.exists():
        if md5sum(target) == resource.md5:
            return target
        target.unlink()
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
    actual = md5sum(part)
    if actual != resource.md5:
        part.unlink()
        raise ChecksumError(
            f"{resource.filename} has MD5 {actual}, expected {resource.md5}: the download is corrupt or "
            f"the server sent another file. It was deleted; run the command again to download it afresh."
        )
    part.replace(target)
    return target


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


def md5sum(path: Path) -> str:
    """MD5 of a file, read in 1 MB chunks."""
    digest = hashlib.md5()
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


def extract(archive_path: Path, root: Path, *, progress: bool = True) -> list[str]:
    """Extract a RAVDESS zip into ``root`` all-or-nothing; return the extracted file names.

    Entries are checked first (:func:`check_members`), then written into ``root/.extracting`` and
    the ``Actor_XX`` folders are moved into ``root`` only when every file was written.
    """
    staging = root / _STAGING
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with zipfile.ZipFile(archive_path) as archive:
            members = check_members(archive)
            staging.mkdir(parents=True)
            for info in tqdm(members, desc="extracting", unit="file", disable=not progress):
                archive.extract(info, staging)
        actor_dirs = sorted(p for p in staging.rglob("Actor_*") if p.is_dir())
        if not actor_dirs:
            raise DownloadError(f"{archive_path.name} holds no Actor_XX folders; is it the RAVDESS speech archive?")
        for folder in actor_dirs:
            destination = root / folder.name
            if destination.exists():
                shutil.rmtree(destination)
            folder.replace(destination)
    except zipfile.BadZipFile as err:
        raise DownloadError(f"{archive_path} is not a valid zip archive ({err}); delete it and download again") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [m.filename for m in members if not m.is_dir()]


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass

"""The downloader end to end against a zip served from 127.0.0.1 (never the internet)."""
from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from ser_lib.data import corpora, download
from ser_lib.errors import ChecksumError, DownloadError, UnsafeArchiveError
from conftest import ArchiveServer, run_cli


def make_zip(small_corpus: Path, actors=(1, 2), extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for actor in actors:
            for wav in sorted((small_corpus / f"Actor_{actor:02d}").glob("*.wav")):
                archive.write(wav, f"Actor_{actor:02d}/{wav.name}")
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def payload(small_corpus) -> bytes:
    return make_zip(small_corpus)


@pytest.fixture
def server(payload):
    srv = ArchiveServer(payload)
    yield srv
    srv.close()


def test_download_extract_index_and_idempotence(tmp_path, server):
    root = tmp_path / "RAVDESS"
    download.download(root, server.resource(), progress=False)
    clips = corpora.index(root, strict=True)
    assert len(clips) == 120 and sorted(clips["actor"].unique()) == [1, 2]
    assert not (root / ".download").exists() and not list(root.glob(".extracting*"))
    assert server.requests == [None]
    download.download(root, server.resource(), progress=False)  # second run: nothing to do
    assert server.requests == [None]


def test_interrupted_transfer_resumes_with_a_range_request(tmp_path, server, payload):
    half = len(payload) // 2
    server.cut_after = [half]
    root = tmp_path / "RAVDESS"
    download.download(root, server.resource(), progress=False, retries=2)
    assert server.requests == [None, f"bytes={half}-"]
    assert len(corpora.index(root)) == 120


def test_partial_file_is_resumed_by_the_next_run(tmp_path, server, payload):
    server.cut_after = [1000, 2000]
    root = tmp_path / "RAVDESS"
    with pytest.raises(DownloadError, match="run the same command again to resume"):
        download.download(root, server.resource(), progress=False, retries=1)
    part = root / ".download" / "Audio_Speech_Actors_01-24.zip.part"
    assert part.stat().st_size == 3000
    assert not list(root.glob("Actor_*"))
    download.download(root, server.resource(), progress=False, retries=0)
    assert server.requests[-1] == "bytes=3000-"
    assert len(corpora.index(root)) == 120 and not part.exists()


def test_checksum_mismatch_extracts_nothing_and_keeps_the_archive_aside(tmp_path, server, payload):
    root = tmp_path / "RAVDESS"
    with pytest.raises(ChecksumError, match="but 0{32} was expected"):
        download.download(root, server.resource(md5="0" * 32), progress=False)
    leftovers = [p for p in root.rglob("*") if p.is_file()]
    found = hashlib.md5(payload).hexdigest()
    assert leftovers == [root / ".download" / f"Audio_Speech_Actors_01-24.zip.md5-{found}.rejected"]
    assert leftovers[0].read_bytes() == payload and not list(root.glob("Actor_*"))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_existing_clips_and_notes_are_kept_byte_for_byte(tmp_path, server, small_corpus):
    root = tmp_path / "RAVDESS"
    shutil.copytree(small_corpus / "Actor_01", root / "Actor_01")
    (root / "Actor_01" / "notes.txt").write_text("my notes")
    edited = root / "Actor_01" / "03-01-05-02-01-01-01.wav"  # a clip that differs from the archive's
    edited.write_bytes(edited.read_bytes()[:-100] + bytes(100))
    before = snapshot(root)
    download.download(root, server.resource(), progress=False)
    after = snapshot(root)
    assert {name: data for name, data in after.items() if name in before} == before  # nothing was touched
    assert len(list((root / "Actor_02").glob("*.wav"))) == 60  # what was missing was added
    marker = json.loads((root / download.MARKER).read_text())
    assert marker["added"] == 60 and marker["already_there"] == 60
    assert marker["differing"] == ["Actor_01/03-01-05-02-01-01-01.wav"]


def test_a_failure_during_extraction_removes_only_what_it_added(tmp_path, server, small_corpus, monkeypatch):
    root = tmp_path / "RAVDESS"
    shutil.copytree(small_corpus / "Actor_01", root / "Actor_01")
    before = snapshot(root)
    original, calls = download._copy_member, {"n": 0}

    def disk_full_at_the_fifth_new_file(*args):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError(28, "No space left on device")
        return original(*args)

    monkeypatch.setattr(download, "_copy_member", disk_full_at_the_fifth_new_file)
    with pytest.raises(OSError, match="No space left"):
        download.download(root, server.resource(), progress=False)
    assert {k: v for k, v in snapshot(root).items() if not k.startswith(".download")} == before
    assert not (root / "Actor_02").exists() and not (root / download.MARKER).exists()


def test_a_supplied_archive_with_a_wrong_checksum_is_kept_and_explained(tmp_path, server, payload):
    root = tmp_path / "RAVDESS"
    supplied = root / ".download" / "Audio_Speech_Actors_01-24.zip"
    supplied.parent.mkdir(parents=True)
    supplied.write_bytes(payload[:-10])  # an incomplete copy
    with pytest.raises(ChecksumError) as caught:
        download.download(root, server.resource(), progress=False)
    message, found = str(caught.value), hashlib.md5(payload[:-10]).hexdigest()
    assert hashlib.md5(payload).hexdigest() in message and found in message and "copied there by you" in message
    assert "cannot reach" not in message and server.requests == []  # nothing was downloaded instead
    kept = root / ".download" / f"Audio_Speech_Actors_01-24.zip.md5-{found}.rejected"
    assert kept.read_bytes() == payload[:-10]
    download.download(root, server.resource(), progress=False)  # the next run downloads afresh
    assert len(corpora.index(root)) == 120 and kept.exists()


def test_an_archive_you_supplied_stays_after_extraction(tmp_path, server, payload):
    supplied = tmp_path / "RAVDESS" / ".download" / "Audio_Speech_Actors_01-24.zip"
    supplied.parent.mkdir(parents=True)
    supplied.write_bytes(payload)
    download.download(tmp_path / "RAVDESS", server.resource(), progress=False)
    assert server.requests == [] and supplied.read_bytes() == payload
    assert len(corpora.index(tmp_path / "RAVDESS")) == 120


def test_a_zip_bomb_is_refused_before_anything_is_written(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("Actor_01/03-01-01-01-01-01-01.wav", bytes(64 * 1024 * 1024))
    srv = ArchiveServer(buffer.getvalue())  # served with its true MD5, as `--url ... --md5` would give
    try:
        root = tmp_path / "RAVDESS"
        with pytest.raises(UnsafeArchiveError, match="would expand [0-9]+ times"):
            download.download(root, srv.resource(), progress=False)
        assert not list(root.glob("Actor_*")) and not (root / download.MARKER).exists()
        assert not any(p.is_dir() and p.name.startswith(".extracting") for p in root.iterdir())
    finally:
        srv.close()


def test_an_archive_larger_than_the_limit_is_refused(tmp_path, server, payload):
    root = tmp_path / "RAVDESS"
    with pytest.raises(UnsafeArchiveError, match="more than the limit .*--max_extract_gb"):
        download.download(root, server.resource(), progress=False, max_bytes=len(payload) // 2)
    assert not list(root.glob("Actor_*"))
    run = run_cli("download", "--root", str(tmp_path / "cli"), "--url", server.url, "--md5",
                  hashlib.md5(payload).hexdigest(), "--max_extract_gb", "0.0001")
    assert run.returncode == 2 and "more than the limit" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize("evil", ["../evil.txt", "/tmp/ser-evil-absolute.txt", "Actor_01/../../evil.txt"])
def test_malicious_entries_are_refused_before_anything_is_written(tmp_path, small_corpus, evil):
    srv = ArchiveServer(make_zip(small_corpus, actors=(1,), extra={evil: b"owned"}))
    try:
        root = tmp_path / "deep" / "RAVDESS"
        with pytest.raises(UnsafeArchiveError, match="nothing was extracted"):
            download.download(root, srv.resource(), progress=False)
        assert not list(root.glob("Actor_*")) and not list(root.glob(".extracting*"))
        assert not (tmp_path / "deep" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()
        assert not Path("/tmp/ser-evil-absolute.txt").exists()
    finally:
        srv.close()


def test_symlink_entries_are_refused(tmp_path):
    info = zipfile.ZipInfo("Actor_01/link.wav")
    info.external_attr = (0o120777 << 16)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(info, "/etc/passwd")
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        with pytest.raises(UnsafeArchiveError, match="symbolic link"):
            download.check_members(archive)


def test_cli_download_end_to_end(tmp_path, server, payload):
    root = tmp_path / "dataset" / "RAVDESS"
    server.cut_after = [len(payload) // 3]
    cmd = ["download", "--root", str(root), "--url", server.url,
           "--md5", hashlib.md5(payload).hexdigest()]
    run = run_cli(*cmd)
    assert run.returncode == 0, run.stderr
    assert "CC BY-NC-SA" in run.stdout
    assert any(r and r.startswith("bytes=") for r in server.requests)
    again = run_cli(*cmd)
    assert again.returncode == 0 and "already downloaded" in again.stderr
    bad = run_cli(*cmd[:-1], "f" * 32, "--root", str(tmp_path / "other"))
    last_line = bad.stderr.strip().splitlines()[-1]
    assert bad.returncode == 2 and last_line.startswith("error:") and "MD5" in last_line
    assert "Traceback" not in bad.stderr


def test_default_resource_is_the_zenodo_archive():
    res = download.RAVDESS_SPEECH
    assert "zenodo.org/records/1188976" in res.url and res.filename == "Audio_Speech_Actors_01-24.zip"
    assert res.md5 == "bc696df654c87fed845eb13823edef8a"

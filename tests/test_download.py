"""The downloader end to end against a zip served from 127.0.0.1 (never the internet)."""
from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ser_lib.data import download, ravdess
from ser_lib.errors import ChecksumError, DownloadError, UnsafeArchiveError


class ArchiveServer:
    """Serves one payload at /archive.zip with HTTP Range support; can cut the first transfers short."""

    def __init__(self, payload: bytes):
        self.payload = payload
        self.cut_after: list[int] = []   # byte counts at which successive responses break off
        self.requests: list[str | None] = []  # the Range header of each request
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                server.requests.append(rng)
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                if start >= len(server.payload):
                    self.send_response(416)
                    self.end_headers()
                    return
                body = server.payload[start:]
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(server.payload) - 1}/{len(server.payload)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cut_after:
                    self.wfile.write(body[: server.cut_after.pop(0)])
                    self.wfile.flush()
                    self.connection.shutdown(2)  # the connection drops mid-transfer
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/archive.zip"

    def resource(self, md5: str | None = None) -> download.Resource:
        return download.Resource(url=self.url, filename="Audio_Speech_Actors_01-24.zip",
                                 md5=md5 or hashlib.md5(self.payload).hexdigest())

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


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
    clips = ravdess.index(root, strict=True)
    assert len(clips) == 120 and sorted(clips["actor"].unique()) == [1, 2]
    assert not (root / ".download").exists() and not (root / ".extracting").exists()
    assert server.requests == [None]
    download.download(root, server.resource(), progress=False)  # second run: nothing to do
    assert server.requests == [None]


def test_interrupted_transfer_resumes_with_a_range_request(tmp_path, server, payload):
    half = len(payload) // 2
    server.cut_after = [half]
    root = tmp_path / "RAVDESS"
    download.download(root, server.resource(), progress=False, retries=2)
    assert server.requests == [None, f"bytes={half}-"]
    assert len(ravdess.index(root)) == 120


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
    assert len(ravdess.index(root)) == 120 and not part.exists()


def test_checksum_mismatch_leaves_no_data_behind(tmp_path, server):
    root = tmp_path / "RAVDESS"
    with pytest.raises(ChecksumError, match="expected 0{32}"):
        download.download(root, server.resource(md5="0" * 32), progress=False)
    leftovers = [p for p in root.rglob("*") if p.is_file()]
    assert leftovers == []
    assert not list(root.glob("Actor_*"))


@pytest.mark.parametrize("evil", ["../evil.txt", "/tmp/ser-evil-absolute.txt", "Actor_01/../../evil.txt"])
def test_malicious_entries_are_refused_before_anything_is_written(tmp_path, small_corpus, evil):
    srv = ArchiveServer(make_zip(small_corpus, actors=(1,), extra={evil: b"owned"}))
    try:
        root = tmp_path / "deep" / "RAVDESS"
        with pytest.raises(UnsafeArchiveError, match="nothing was extracted"):
            download.download(root, srv.resource(), progress=False)
        assert not list(root.glob("Actor_*")) and not (root / ".extracting").exists()
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
    cmd = [sys.executable, "-m", "ser_lib", "download", "--root", str(root), "--url", server.url,
           "--md5", hashlib.md5(payload).hexdigest()]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "CC BY-NC-SA" in run.stdout
    assert any(r and r.startswith("bytes=") for r in server.requests)
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "already downloaded" in again.stderr
    bad = subprocess.run(cmd[:-1] + ["f" * 32, "--root", str(tmp_path / "other")],
                         capture_output=True, text=True, timeout=120)
    last_line = bad.stderr.strip().splitlines()[-1]
    assert bad.returncode == 2 and last_line.startswith("error:") and "MD5" in last_line
    assert "Traceback" not in bad.stderr


def test_default_resource_is_the_zenodo_archive():
    res = download.RAVDESS_SPEECH
    assert "zenodo.org/records/1188976" in res.url and res.filename == "Audio_Speech_Actors_01-24.zip"
    assert res.md5 == "bc696df654c87fed845eb13823edef8a"

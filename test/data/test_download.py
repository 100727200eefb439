"""The resumable, checksummed download tool: file:// and a local HTTP server on 127.0.0.1, no network."""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import tarfile
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest

from mslam.data.download import DownloadError, download_all, download_file, read_checksums

REPO = Path(__file__).resolve().parents[2]


def tar_of(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# Real archives: files without a listed sha256 are checked as archives (mslam.data.archives).
FILES = {
    "audios/de_2019.tar": tar_of({f"de/2019/{i}.ogg": os.urandom(100_000) for i in range(3)}),
    "audios/fr 2020.tar": tar_of({"fr/2020/a.ogg": os.urandom(60_000)}),   # a space: quoted in the URL
    "asr_de.tsv.gz": gzip.compress(b"id\ttext\nu1\thallo\n"),
}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_source(root: Path, files: dict[str, bytes] = FILES) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def write_checksums(path: Path, files: dict[str, bytes]) -> Path:
    path.write_text("# sha256sum output\n" + "".join(f"{sha(d)}  {rel}\n" for rel, d in files.items()))
    return path


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mslam.bin.download", "--no-progress", *args], input=stdin,
                          capture_output=True, text=True, cwd=REPO, timeout=60)


def assert_tree(out: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        assert (out / rel).read_bytes() == data, rel
    assert not list(out.rglob("*.part"))


# --- file:// and local directories -------------------------------------------------------------------------

def test_file_url_fetches_into_sub_folders_verifies_checksums_and_a_rerun_does_no_work(tmp_path):
    src = make_source(tmp_path / "mirror")
    sums = write_checksums(tmp_path / "SHA256SUMS", FILES)
    out = tmp_path / "out"
    summary = download_all(src.as_uri(), FILES, out, checksums=read_checksums(sums), progress=False)
    assert summary == {"fetched": 3, "present": 0, "bytes": sum(map(len, FILES.values()))}
    assert_tree(out, FILES)

    # Rerun: nothing is read from the source (it is gone), files are verified and left alone.
    mtimes = {rel: (out / rel).stat().st_mtime_ns for rel in FILES}
    (src / "audios/de_2019.tar").unlink()
    summary = download_all(src.as_uri(), FILES, out, checksums=read_checksums(sums), progress=False)
    assert summary == {"fetched": 0, "present": 3, "bytes": 0}
    assert {rel: (out / rel).stat().st_mtime_ns for rel in FILES} == mtimes


def test_cli_reads_a_list_from_stdin_with_a_plain_directory_as_base_and_prints_a_summary(tmp_path):
    src = make_source(tmp_path / "mirror")
    listing = "# selection\n\naudios/de_2019.tar\n  asr_de.tsv.gz  \n"
    r = run_cli("--base-url", str(src), "--out", str(tmp_path / "out"), "--list", "-", "audios/fr 2020.tar",
                stdin=listing)
    assert r.returncode == 0, r.stderr
    assert_tree(tmp_path / "out", FILES)
    assert r.stdout.strip() == f"3 fetched, 0 already present, {sum(map(len, FILES.values())) / 2**20:.1f} MiB"
    r = run_cli("--base-url", str(src), "--out", str(tmp_path / "out"), "--list", "-", stdin=listing)
    assert r.returncode == 0 and r.stdout.strip() == "0 fetched, 2 already present, 0.0 MiB"
    assert "asr_de.tsv.gz: already present" in r.stderr


def test_a_half_part_is_completed_without_reading_its_first_half_again(tmp_path):
    # The .part's first half differs from the source's: the result keeps it only if it is not re-fetched.
    # (Not an archive: a tar spliced like this would fail its check and be fetched again whole.)
    data = os.urandom(300_000)
    src = make_source(tmp_path / "mirror", {"a.bin": data})
    kept = bytes(b ^ 0xFF for b in data[:len(data) // 2])
    (tmp_path / "out").mkdir()
    (tmp_path / "out/a.bin.part").write_bytes(kept)
    assert download_file((src / "a.bin").as_uri(), tmp_path / "out/a.bin", progress=False)
    assert (tmp_path / "out/a.bin").read_bytes() == kept + data[len(kept):]
    assert not (tmp_path / "out/a.bin.part").exists()


def test_a_resumed_part_that_gives_a_bad_file_is_fetched_again_from_scratch(tmp_path, caplog):
    data = FILES["audios/de_2019.tar"]
    src = make_source(tmp_path / "mirror", {"a.tar": data})
    (tmp_path / "out").mkdir()
    (tmp_path / "out/a.tar.part").write_bytes(b"\0" * 1000)   # bytes of another version of the file
    assert download_file((src / "a.tar").as_uri(), tmp_path / "out/a.tar", sha256=sha(data), progress=False)
    assert (tmp_path / "out/a.tar").read_bytes() == data
    assert "fetching it again from scratch" in caplog.text


def test_a_checksum_mismatch_deletes_the_file_and_names_file_expected_got_and_url(tmp_path):
    other = gzip.compress(b"another version\n", mtime=0)  # gzip stamps the time: made once, hashed once
    src = make_source(tmp_path / "mirror", {"asr_de.tsv.gz": other})
    sums = write_checksums(tmp_path / "SHA256SUMS", {"asr_de.tsv.gz": FILES["asr_de.tsv.gz"]})
    out = tmp_path / "out"
    r = run_cli("--base-url", src.as_uri(), "--out", str(out), "--checksums", str(sums), "asr_de.tsv.gz")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    message = r.stderr.strip().splitlines()[-1]
    assert message.startswith(f"download: {out / 'asr_de.tsv.gz'}: sha256 mismatch")
    assert sha(FILES["asr_de.tsv.gz"]) in message and sha(other) in message
    assert (src / "asr_de.tsv.gz").as_uri() in message
    assert not (out / "asr_de.tsv.gz").exists() and not (out / "asr_de.tsv.gz.part").exists()


def test_a_present_file_with_a_wrong_checksum_is_replaced(tmp_path):
    src = make_source(tmp_path / "mirror")
    (tmp_path / "out").mkdir()
    (tmp_path / "out/asr_de.tsv.gz").write_bytes(b"damaged")
    sums = {"asr_de.tsv.gz": sha(FILES["asr_de.tsv.gz"])}
    assert download_all(src, ["asr_de.tsv.gz"], tmp_path / "out", checksums=sums, progress=False)["fetched"] == 1
    assert (tmp_path / "out/asr_de.tsv.gz").read_bytes() == FILES["asr_de.tsv.gz"]


@pytest.mark.parametrize("path, message", [
    ("audios/pl_2019.tar", "not found"),
    ("../outside.tar", "not a relative path under the URL base"),
    ("/etc/passwd", "not a relative path under the URL base"),
])
def test_a_missing_or_bad_path_is_a_clear_error(tmp_path, path, message):
    src = make_source(tmp_path / "mirror")
    r = run_cli("--base-url", src.as_uri(), "--out", str(tmp_path / "out"), "asr_de.tsv.gz", path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("download: ")
    assert message in r.stderr and path in r.stderr
    if message == "not found":
        assert "db.sh" in r.stderr
    else:  # paths are checked before anything is fetched
        assert not (tmp_path / "out").exists()


def test_a_malformed_checksums_line_is_named(tmp_path):
    sums = tmp_path / "SHA256SUMS"
    sums.write_text(f"{sha(b'x')}  a.tar\nnot-a-hash  b.tar\n")
    with pytest.raises(DownloadError, match=r"SHA256SUMS:2: expected '<sha256 hex>  <relative path>'"):
        read_checksums(sums)


# --- files already there, without checksums -----------------------------------------------------------------

def test_a_present_archive_cut_short_is_fetched_again_without_checksums(tmp_path, caplog):
    rel = "audios/de_2019.tar"
    src = make_source(tmp_path / "mirror")
    out = tmp_path / "out"
    (out / "audios").mkdir(parents=True)
    (out / rel).write_bytes(FILES[rel][:100_000 * 2])   # cut inside the last member: its size gives it away
    assert download_all(src, [rel, "asr_de.tsv.gz"], out, progress=False) == \
        {"fetched": 2, "present": 0, "bytes": len(FILES[rel]) + len(FILES["asr_de.tsv.gz"])}
    assert f"its size 200000 differs from the source's {len(FILES[rel])} bytes; fetching it again" in caplog.text
    assert_tree(out, {rel: FILES[rel]})
    # Verified once: a rerun leaves it alone, even with the source gone.
    (src / rel).unlink()
    assert download_all(src, [rel], out, progress=False)["present"] == 1
    assert (out / "audios/.de_2019.tar.verified").is_file()


def test_a_present_archive_cut_between_members_is_found_by_reading_it(server, tmp_path, caplog):
    """The test server answers HEAD with 501: no size to compare, so the archive itself is checked."""
    rel = "audios/de_2019.tar"
    with tarfile.open(fileobj=io.BytesIO(FILES[rel])) as tar:
        last = tar.getmembers()[-1]
    (tmp_path / "out/audios").mkdir(parents=True)
    (tmp_path / "out" / rel).write_bytes(FILES[rel][:last.offset])   # two whole members, then nothing
    assert download_all(server.url, [rel], tmp_path / "out", progress=False, backoff=0)["fetched"] == 1
    assert "no end-of-archive block after the last member" in caplog.text
    assert_tree(tmp_path / "out", {rel: FILES[rel]})


def test_a_source_serving_a_broken_archive_is_a_clear_error(tmp_path):
    src = make_source(tmp_path / "mirror", {"asr_de.tsv.gz": FILES["asr_de.tsv.gz"][:-6]})
    r = run_cli("--base-url", str(src), "--out", str(tmp_path / "out"), "asr_de.tsv.gz")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    message = r.stderr.strip().splitlines()[-1]
    assert message.startswith(f"download: {tmp_path / 'out/asr_de.tsv.gz'}: not a readable gzip archive")
    assert "the downloaded copy was deleted" in message and not list((tmp_path / "out").iterdir())


# --- HTTP against a local server -----------------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    """Serves `server.files`; honours `Range: bytes=N-` unless `server.ignore_range`; answers the statuses
    queued in `server.statuses` first; drops the connection after K bytes for each K queued in `server.drops`."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        srv = self.server
        rel, byte_range = unquote(self.path.lstrip("/")), self.headers.get("Range")
        srv.requests.append((rel, byte_range))
        if srv.statuses:
            self.send_error(srv.statuses.pop(0))
            return
        if rel not in srv.files:
            self.send_error(404)
            return
        body, start = srv.files[rel], 0
        if byte_range and not srv.ignore_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", byte_range).group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        # A drop sends part of the body and closes the connection: the client sees a short read.
        self.wfile.write(body[start:start + srv.drops.pop(0)] if srv.drops else body[start:])


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}/base"
    srv.files = {f"base/{rel}": data for rel, data in FILES.items()}
    srv.requests, srv.statuses, srv.drops, srv.ignore_range = [], [], [], False
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def fetch(server, tmp_path, rels, **kw):
    sums = {rel: sha(FILES[rel]) for rel in rels}
    return download_all(server.url, rels, tmp_path / "out", checksums=sums, progress=False, backoff=0,
                        timeout=5, **kw)


def test_http_dropped_connection_is_retried_and_resumed_with_range(server, tmp_path, caplog):
    rel, k = "audios/de_2019.tar", 123_457
    server.drops = [k]
    assert fetch(server, tmp_path, [rel])["fetched"] == 1
    assert server.requests == [(f"base/{rel}", None), (f"base/{rel}", f"bytes={k}-")]
    assert sha((tmp_path / "out" / rel).read_bytes()) == sha(FILES[rel])
    assert f"incomplete read: 123457 of {len(FILES[rel])} bytes; retrying" in caplog.text


def test_http_server_ignoring_range_still_gives_the_right_file(server, tmp_path):
    rel = "audios/de_2019.tar"
    server.ignore_range = True
    server.drops = [100_000]
    (tmp_path / "out/audios").mkdir(parents=True)
    assert fetch(server, tmp_path, [rel, "audios/fr 2020.tar"])["fetched"] == 2
    assert server.requests[:2] == [(f"base/{rel}", None), (f"base/{rel}", "bytes=100000-")]  # answered 200
    assert_tree(tmp_path / "out", {rel: FILES[rel], "audios/fr 2020.tar": FILES["audios/fr 2020.tar"]})


def test_http_5xx_is_retried_and_a_complete_part_is_just_renamed(server, tmp_path):
    rel = "asr_de.tsv.gz"
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / f"{rel}.part").write_bytes(FILES[rel])   # stopped between the last byte and the rename
    server.statuses = [503]
    assert fetch(server, tmp_path, [rel])["fetched"] == 1
    assert [r[1] for r in server.requests] == [f"bytes={len(FILES[rel])}-"] * 2   # 503, then 416
    assert_tree(tmp_path / "out", {rel: FILES[rel]})


def test_http_404_fails_at_once_naming_url_status_and_the_fix(server, tmp_path):
    with pytest.raises(DownloadError) as e:
        download_all(server.url, ["audios/pl_2019.tar"], tmp_path / "out", progress=False, backoff=0)
    assert str(e.value).startswith(f"{server.url}/audios/pl_2019.tar: HTTP 404")
    assert "URL base" in str(e.value) and "db.sh" in str(e.value)
    assert len(server.requests) == 1


def test_http_failures_beyond_the_retries_keep_the_part_for_a_rerun(server, tmp_path):
    rel = "audios/de_2019.tar"
    server.drops = [1000, 1000, 1000]
    with pytest.raises(DownloadError, match=r"failed after 3 attempts.*a rerun continues it"):
        fetch(server, tmp_path, [rel], retries=2)
    assert (tmp_path / "out" / f"{rel}.part").stat().st_size == 3000
    assert not (tmp_path / "out" / rel).exists()
    assert fetch(server, tmp_path, [rel])["fetched"] == 1
    assert server.requests[-1] == (f"base/{rel}", "bytes=3000-")
    assert_tree(tmp_path / "out", {rel: FILES[rel]})

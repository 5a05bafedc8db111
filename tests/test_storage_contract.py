"""Contract tests run identically against every ObjectStore backend, plus backend failure modes."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest

import storage
from storage import (
    CHUNK_SIZE,
    InvalidKey,
    LocalStore,
    ObjectExists,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    S3Store,
    StorageError,
    StorageUnavailable,
    open_store,
)
from tests.s3_peer import s3_endpoint, s3_store  # noqa: F401

META = {"case-id": "c-42", "document-id": "d-7", "version": "3", "sha256": "ab" * 32}


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """Each contract test runs once per backend; check() mirrors the app's startup probe."""
    if request.param == "local":
        local = LocalStore(tmp_path / "store")
        local.check()
        return local
    s3: ObjectStore = request.getfixturevalue("s3_store")
    return s3


def read(store: ObjectStore, key: str, start: int = 0, length: int | None = None) -> bytes:
    """Read a range completely, asserting the chunk size bound on the way."""
    chunks = list(store.open(key, start, length))
    assert all(0 < len(chunk) <= CHUNK_SIZE for chunk in chunks)
    return b"".join(chunks)


def write_file(directory: Path, data: bytes, name: str = "upload.bin") -> Path:
    """Create a source file for put_file."""
    path = directory / name
    path.write_bytes(data)
    return path


def closed_port() -> int:
    """Return a local TCP port nobody listens on (bound then released, never listened)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- round trips ---------------------------------------------------------------------------


def test_put_bytes_round_trip(store: ObjectStore) -> None:
    """put_bytes returns and stores bytes, size and metadata."""
    info = store.put_bytes("cases/c-42/derived/preview.txt", b"hello dossier", META)
    assert info == ObjectInfo("cases/c-42/derived/preview.txt", 13, META)
    assert store.stat("cases/c-42/derived/preview.txt") == info
    assert read(store, "cases/c-42/derived/preview.txt") == b"hello dossier"


def test_put_file_round_trip(store: ObjectStore, tmp_path: Path) -> None:
    """put_file stores a multi-chunk file with its metadata."""
    data = os.urandom(3 * CHUNK_SIZE + 17)
    info = store.put_file("cases/c-42/docs/d-7/v3", write_file(tmp_path, data), META)
    assert info == ObjectInfo("cases/c-42/docs/d-7/v3", len(data), META)
    assert store.stat("cases/c-42/docs/d-7/v3") == info
    assert read(store, "cases/c-42/docs/d-7/v3") == data


def test_empty_object_and_empty_metadata(store: ObjectStore) -> None:
    """Zero-byte objects and empty metadata round-trip."""
    assert store.put_bytes("empty", b"", {}) == ObjectInfo("empty", 0, {})
    assert store.stat("empty") == ObjectInfo("empty", 0, {})
    assert read(store, "empty") == b""
    assert read(store, "empty", 0, 10) == b""


def test_unicode_and_binary_content(store: ObjectStore) -> None:
    """Content is opaque bytes: UTF-8 text and all byte values survive."""
    data = "Grüezi, Integrationsagenda Schweiz 🇨🇭\n".encode() + bytes(range(256)) * 3
    store.put_bytes("binary", data, {"encoding": "utf-8"})
    assert read(store, "binary") == data
    assert store.stat("binary").size == len(data)


def test_metadata_names_that_look_like_http_headers(store: ObjectStore) -> None:
    """Metadata named like HTTP headers stays user metadata."""
    # minio forwards these names as real HTTP headers unless they are prefixed explicitly.
    meta = {"content-type": "text/plain", "cache-control": "x", "x-amz-acl": "y", "empty": ""}
    store.put_bytes("headers", b"x", meta)
    assert store.stat("headers").metadata == meta


# -- immutability -------------------------------------------------------------------------


def test_never_overwrites(store: ObjectStore, tmp_path: Path) -> None:
    """A second put of a key fails with ObjectExists and leaves the original."""
    store.put_bytes("doc/v1", b"original", META)
    with pytest.raises(ObjectExists):
        store.put_bytes("doc/v1", b"replacement", {"version": "9"})
    source = write_file(tmp_path, b"replacement")
    with pytest.raises(ObjectExists):
        store.put_file("doc/v1", source, {"version": "9"})
    assert source.read_bytes() == b"replacement", "a failed put must leave the source alone"
    assert store.stat("doc/v1") == ObjectInfo("doc/v1", 8, META)
    assert read(store, "doc/v1") == b"original"


def test_key_can_be_reused_after_delete(store: ObjectStore) -> None:
    """A deleted key can be written again with new content and metadata."""
    store.put_bytes("reuse", b"one", {"version": "1"})
    store.delete("reuse")
    store.put_bytes("reuse", b"two", {"version": "2"})
    assert store.stat("reuse") == ObjectInfo("reuse", 3, {"version": "2"})
    assert read(store, "reuse") == b"two"


# -- reads --------------------------------------------------------------------------------

DATA = bytes(range(256)) * 40  # 10240 bytes, every offset distinguishable
N = len(DATA)


@pytest.mark.parametrize(
    ("start", "length", "expected"),
    [
        (0, None, DATA),
        (100, None, DATA[100:]),
        (100, 50, DATA[100:150]),
        (0, 1, DATA[:1]),
        (N - 1, None, DATA[-1:]),
        (N - 10, 100, DATA[-10:]),  # length past the end is clamped
        (0, 0, b""),
        (100, 0, b""),
        (N, None, b""),
        (N, 10, b""),
        (N + 5, None, b""),
        (N + 5, 3, b""),
    ],
)
def test_range_reads(store: ObjectStore, start: int, length: int | None, expected: bytes) -> None:
    """Byte ranges are served exactly, clamped to the object size."""
    store.put_bytes("ranged", DATA, {})
    assert read(store, "ranged", start, length) == expected


@pytest.mark.parametrize(("start", "length"), [(-1, None), (0, -1), (-5, 5)])
def test_invalid_range_is_value_error(store: ObjectStore, start: int, length: int | None) -> None:
    """Negative start or length is a caller error."""
    store.put_bytes("ranged", DATA, {})
    with pytest.raises(ValueError):
        store.open("ranged", start, length)


@pytest.mark.parametrize("length", [None, 0, 10])
def test_open_missing_raises_at_call_time(store: ObjectStore, length: int | None) -> None:
    """open() of a missing key fails before the first chunk is requested."""
    with pytest.raises(ObjectNotFound):
        store.open("no/such/object", 0, length)  # not iterated: must fail eagerly


def test_stat_missing(store: ObjectStore) -> None:
    """stat() of a missing key raises ObjectNotFound."""
    with pytest.raises(ObjectNotFound):
        store.stat("no/such/object")


@pytest.mark.slow
def test_large_object_streams_in_bounded_chunks(store: ObjectStore, tmp_path: Path) -> None:
    """A 20 MiB object streams in chunks of at most 1 MiB."""
    size = 20 * 1024 * 1024
    data = os.urandom(size)
    meta = {"sha256": hashlib.sha256(data).hexdigest()}
    store.put_file("large/v1", write_file(tmp_path, data), meta)
    digest = hashlib.sha256()
    total = 0
    count = 0
    with store.open("large/v1") as stream:
        for chunk in stream:
            assert 0 < len(chunk) <= CHUNK_SIZE
            digest.update(chunk)
            total += len(chunk)
            count += 1
    assert total == size
    assert count >= size // CHUNK_SIZE
    assert digest.hexdigest() == store.stat("large/v1").metadata["sha256"]
    # A range in the middle crossing chunk boundaries.
    assert (
        read(store, "large/v1", 5 * CHUNK_SIZE - 3, 2 * CHUNK_SIZE + 6)
        == data[5 * CHUNK_SIZE - 3 : 7 * CHUNK_SIZE + 3]
    )


def test_aborted_download_releases_resources(store: ObjectStore) -> None:
    """Closing a stream early (or unstarted) frees its file/connection."""
    store.put_bytes("abort", os.urandom(3 * CHUNK_SIZE), {})
    for _ in range(30):  # more than the S3 pool size: leaked connections would block/raise
        stream = store.open("abort")
        assert len(next(stream)) <= CHUNK_SIZE
        stream.close()
        unstarted = store.open("abort")
        unstarted.close()
    assert read(store, "abort", 10, 5)  # the store is still healthy


# -- delete and listing -------------------------------------------------------------------


def test_delete_is_idempotent(store: ObjectStore) -> None:
    """delete() removes an object and tolerates missing keys."""
    store.delete("never/existed")
    store.put_bytes("to/delete", b"x", META)
    store.delete("to/delete")
    with pytest.raises(ObjectNotFound):
        store.stat("to/delete")
    with pytest.raises(ObjectNotFound):
        store.open("to/delete")
    store.delete("to/delete")
    assert list(store.iter_keys()) == []


# Chosen so that naive directory-walk order differs from string order ("a.b" < "a/b").
LIST_KEYS = ["b", "a/c/d", "a0", "a.b", "a/b", "a-c", "cases/1/x", "cases/10/y", "cases/2/z"]


@pytest.mark.parametrize("prefix", ["", "a", "a/", "a/c", "a.", "cases/1", "cases/1/", "zz", "b"])
def test_iter_keys_sorted_with_prefix(store: ObjectStore, prefix: str) -> None:
    """iter_keys yields exactly the matching keys in string order."""
    for key in LIST_KEYS:
        store.put_bytes(key, key.encode(), {"k": "v"})
    expected = sorted(k for k in LIST_KEYS if k.startswith(prefix))
    assert list(store.iter_keys(prefix)) == expected


def test_iter_keys_excludes_metadata_and_temp_files(store: ObjectStore, tmp_path: Path) -> None:
    """Sidecars and staging files never appear as keys."""
    store.put_bytes("one", b"1", META)
    store.put_file("two", write_file(tmp_path, b"2"), META)
    if isinstance(store, LocalStore):
        # Simulate a crash mid-upload: leftovers in tmp/ must stay invisible.
        (store.root / "tmp" / "obj-leftover").write_bytes(b"partial")
    assert list(store.iter_keys()) == ["one", "two"]


# -- validation ---------------------------------------------------------------------------

BAD_KEYS = [
    *("../x", "/abs", "A", "a//b", "", "a/", "a/../b", "a/./b", "..", "a b", "ä"),
    "x" * 502,  # longer than 501 characters
    "k" * 251,  # segment longer than a file name may be
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_invalid_keys(store: ObjectStore, key: str, tmp_path: Path) -> None:
    """Every operation rejects malformed keys with InvalidKey."""
    source = write_file(tmp_path, b"x")
    with pytest.raises(InvalidKey):
        store.put_bytes(key, b"x", {})
    with pytest.raises(InvalidKey):
        store.put_file(key, source, {})
    with pytest.raises(InvalidKey):
        store.stat(key)
    with pytest.raises(InvalidKey):
        store.open(key)
    with pytest.raises(InvalidKey):
        store.delete(key)
    assert source.exists()
    assert issubclass(InvalidKey, ValueError)


def test_longest_valid_key(store: ObjectStore) -> None:
    """A 501-character key with maximal segments is accepted."""
    key = "k" * 250 + "/" + "k" * 250  # 501 characters, both segments at the limit
    store.put_bytes(key, b"x", {})
    assert store.stat(key).size == 1


@pytest.mark.parametrize(
    "metadata",
    [
        {"Case-Id": "x"},
        {"case_id": "x"},
        {"": "x"},
        {"k": "Zürich"},
        {"k": "a\nb"},
        {"k": "tab\there"},
        {"k": " padded"},
        {"k": "padded "},
        {"k": 1},
        {"k": "v" * 3000},
    ],
)
def test_invalid_metadata(store: ObjectStore, metadata: dict[str, str], tmp_path: Path) -> None:
    """Malformed metadata raises ValueError and stores nothing."""
    with pytest.raises(ValueError):
        store.put_bytes("meta/bad", b"x", metadata)
    with pytest.raises(ValueError):
        store.put_file("meta/bad", write_file(tmp_path, b"x"), metadata)
    with pytest.raises(ObjectNotFound):
        store.stat("meta/bad")


def test_check_passes_on_healthy_store(store: ObjectStore) -> None:
    """check() passes and describe() names the backend."""
    store.check()
    assert isinstance(store, ObjectStore)
    assert store.describe().startswith(("local:", "s3://"))


# -- local backend specifics --------------------------------------------------------------


@pytest.fixture
def local(tmp_path: Path) -> LocalStore:
    """A LocalStore in a fresh directory on the same filesystem as tmp_path."""
    return LocalStore(tmp_path / "store")


def test_local_put_file_consumes_source_by_hard_link(local: LocalStore, tmp_path: Path) -> None:
    """Same filesystem: the source inode is linked in, not copied."""
    source = write_file(tmp_path, b"zero copy")
    inode = source.stat().st_ino
    local.put_file("linked", source, META)
    assert not source.exists()
    stored = local.root / "objects" / "linked"
    assert stored.stat().st_ino == inode
    assert stored.stat().st_mode & 0o222 == 0, "stored objects are read-only"
    assert json_sidecar(local, "linked") == META


def json_sidecar(local: LocalStore, key: str) -> dict[str, str]:
    """Read a metadata sidecar directly."""
    data: dict[str, str] = json.loads((local.root / "meta" / f"{key}.json").read_text())
    return data


def test_local_put_file_copies_across_filesystems(
    local: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EXDEV falls back to copy-then-link and still consumes the source."""
    source = write_file(tmp_path, b"far away" * 1000)
    inode = source.stat().st_ino
    real_link = os.link

    def link(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        """Fake os.link for the test."""
        if Path(src) == source:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_link(src, dst)

    monkeypatch.setattr("storage.local.os.link", link)
    local.put_file("copied", source, META)
    assert not source.exists()
    assert (local.root / "objects" / "copied").stat().st_ino != inode
    assert read(local, "copied") == b"far away" * 1000
    assert os.listdir(local.root / "tmp") == []


def test_local_missing_sidecar_means_empty_metadata(local: LocalStore) -> None:
    """An object without sidecar has empty metadata."""
    local.put_bytes("nometa", b"abc", META)
    (local.root / "meta" / "nometa.json").unlink()
    assert local.stat("nometa") == ObjectInfo("nometa", 3, {})


def test_local_key_below_existing_object_is_rejected(local: LocalStore) -> None:
    """Local keys cannot be both an object and a prefix."""
    local.put_bytes("a", b"1", {})
    with pytest.raises(InvalidKey):
        local.put_bytes("a/b", b"2", {})
    local.put_bytes("x/y", b"1", {})
    with pytest.raises(InvalidKey):
        local.put_bytes("x", b"2", {})
    with pytest.raises(ObjectNotFound):
        local.stat("a/b")
    with pytest.raises(ObjectNotFound):
        local.stat("x")
    assert list(local.iter_keys()) == ["a", "x/y"]


def test_local_concurrent_writers_exactly_one_wins(local: LocalStore) -> None:
    """Racing writers of one key: one succeeds, the rest get ObjectExists."""
    local.check()
    results: list[str] = []
    barrier = threading.Barrier(8)

    def writer(i: int) -> None:
        """Try to store the contended key."""
        barrier.wait()
        try:
            local.put_bytes("contended", f"writer {i}".encode(), {"writer": str(i)})
            results.append(f"ok {i}")
        except ObjectExists:
            results.append("exists")

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [r for r in results if r.startswith("ok")]
    assert len(winners) == 1 and results.count("exists") == 7
    winner = winners[0].split()[1]
    assert read(local, "contended") == f"writer {winner}".encode()
    assert local.stat("contended").metadata == {"writer": winner}


def test_local_delete_prunes_empty_directories(local: LocalStore) -> None:
    """Deleting the last object of a directory removes the empty dirs."""
    local.put_bytes("cases/1/docs/2/v1", b"x", META)
    local.delete("cases/1/docs/2/v1")
    assert os.listdir(local.root / "objects") == []
    assert os.listdir(local.root / "meta") == []


def test_local_missing_root_is_unavailable_not_not_found(tmp_path: Path) -> None:
    """A missing root reads as unavailable, not as missing objects."""
    # E.g. an unmounted volume: reporting "not found" would look like data loss.
    store = LocalStore(tmp_path / "does-not-exist")
    with pytest.raises(StorageUnavailable):
        store.stat("some/key")
    with pytest.raises(StorageUnavailable):
        list(store.iter_keys())


# -- failure modes ------------------------------------------------------------------------


@pytest.fixture
def dead_s3() -> S3Store:
    """An S3Store pointed at a closed local port (region unset: exercises the lookup too)."""
    return S3Store(f"127.0.0.1:{closed_port()}", "testing", "testing", "dead-bucket")


@pytest.mark.parametrize("operation", ["check", "stat", "put_file", "put_bytes", "open", "list"])
def test_s3_down_is_unavailable_quickly(dead_s3: S3Store, tmp_path: Path, operation: str) -> None:
    """A closed port yields StorageUnavailable within seconds."""
    source = write_file(tmp_path, b"payload")
    calls = {
        "check": lambda: dead_s3.check(),
        "stat": lambda: dead_s3.stat("some/key"),
        "put_file": lambda: dead_s3.put_file("some/key", source, META),
        "put_bytes": lambda: dead_s3.put_bytes("some/key", b"x", META),
        "open": lambda: dead_s3.open("some/key"),
        "list": lambda: list(dead_s3.iter_keys()),
    }
    started = time.monotonic()
    with pytest.raises(StorageUnavailable):
        calls[operation]()
    assert time.monotonic() - started < 15
    assert source.exists()


def test_s3_delete_when_down_is_unavailable(dead_s3: S3Store) -> None:
    """delete() does not pretend success when the server is down."""
    with pytest.raises(StorageUnavailable):
        dead_s3.delete("some/key")


@pytest.fixture
def file_root(tmp_path: Path) -> LocalStore:
    """A LocalStore whose root is a regular file (works even when running as root)."""
    root = tmp_path / "not-a-dir"
    root.write_bytes(b"oops")
    return LocalStore(root)


@pytest.mark.parametrize(
    "operation", ["check", "put_bytes", "put_file", "stat", "open", "list", "delete"]
)
def test_local_root_is_a_file(file_root: LocalStore, tmp_path: Path, operation: str) -> None:
    """A root that is a regular file makes every operation unavailable."""
    source = write_file(tmp_path, b"payload")
    calls = {
        "check": lambda: file_root.check(),
        "put_bytes": lambda: file_root.put_bytes("k", b"x", {}),
        "put_file": lambda: file_root.put_file("k", source, {}),
        "stat": lambda: file_root.stat("k"),
        "open": lambda: file_root.open("k"),
        "list": lambda: list(file_root.iter_keys()),
        "delete": lambda: file_root.delete("k"),
    }
    with pytest.raises(StorageUnavailable) as excinfo:
        calls[operation]()
    assert isinstance(excinfo.value, StorageError)
    assert str(file_root.root) in str(excinfo.value)
    assert source.exists()


@pytest.mark.parametrize("err", [errno.EROFS, errno.ENOSPC, errno.EACCES, errno.EIO])
def test_local_write_errors_are_unavailable(
    local: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, err: int
) -> None:
    """Kernel write errors become StorageUnavailable and leave no litter."""
    # Root ignores permission bits, so simulate the kernel refusing the final link.
    local.check()
    source = write_file(tmp_path, b"payload")

    def link(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        """Fake os.link for the test."""
        raise OSError(err, os.strerror(err), str(src), None, str(dst))

    monkeypatch.setattr("storage.local.os.link", link)
    with pytest.raises(StorageUnavailable, match=os.strerror(err)):
        local.put_file("k", source, META)
    with pytest.raises(StorageUnavailable):
        local.put_bytes("k", b"x", META)
    assert source.read_bytes() == b"payload"
    assert os.listdir(local.root / "tmp") == []  # staged copies cleaned up
    monkeypatch.undo()
    with pytest.raises(ObjectNotFound):
        local.stat("k")


def test_local_sidecar_failure_rolls_back_data(
    local: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed sidecar write removes the data so the key stays free."""
    local.check()
    source = write_file(tmp_path, b"payload")

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        """Fake os.replace failing like a full disk."""
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(src))

    monkeypatch.setattr("storage.local.os.replace", replace)
    with pytest.raises(StorageUnavailable):
        local.put_file("k", source, META)
    monkeypatch.undo()
    assert source.read_bytes() == b"payload"
    with pytest.raises(ObjectNotFound):
        local.stat("k")
    assert os.listdir(local.root / "tmp") == []
    local.put_file("k", source, META)  # the key is not burnt by the failed attempt
    assert local.stat("k").metadata == META


# -- factory ------------------------------------------------------------------------------


def test_open_store_factory(tmp_path: Path) -> None:
    """open_store builds each backend and rejects bad configuration."""
    local = open_store("local", root=str(tmp_path))
    assert isinstance(local, LocalStore) and local.describe() == f"local:{tmp_path}"
    s3 = open_store(
        "s3", endpoint="127.0.0.1:9", access_key="ak", secret_key="s3cr3t", bucket="dossiers"
    )
    assert isinstance(s3, S3Store) and s3.describe() == "s3://127.0.0.1:9/dossiers"
    assert "s3cr3t" not in repr(s3)  # no secret in logs
    with pytest.raises(ValueError):
        open_store("ftp", root=str(tmp_path))
    with pytest.raises(ValueError):
        open_store("local")
    with pytest.raises(ValueError, match="bucket"):
        open_store("s3", endpoint="h:1", access_key="a", secret_key="b")
    assert set(storage.__all__) >= {"open_store", "ObjectStore", "StorageError"}


def fd_count() -> int:
    """Return the number of open file descriptors of this process (Linux only)."""
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_local_streams_do_not_leak_file_descriptors(local: LocalStore) -> None:
    """Closed, unstarted and exhausted streams leak no descriptors."""
    local.put_bytes("fd", os.urandom(2 * CHUNK_SIZE), {})
    before = fd_count()
    for _ in range(50):
        stream = local.open("fd")
        next(stream)
        stream.close()
        local.open("fd").close()  # never started
        read(local, "fd")  # exhausted
    assert fd_count() == before

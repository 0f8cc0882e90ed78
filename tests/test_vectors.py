from __future__ import annotations

import gzip
import zipfile

import numpy as np
import pytest
from conftest import GLOVE50, needs

from sentiment.data import vectors
from sentiment.data.vectors import download, load_vectors
from sentiment.text.vocab import Vocab

LINES = "the 0.1 0.2 0.3\ncat 1 2 3\nbroken 1 2\ndog 4 5 6\nbad x y z\n"


@pytest.fixture
def vocab():
    vocab = Vocab.build([["the", "the", "the", "cat", "cat", "unseen"]])
    return vocab


def check(matrix, stats, vocab):
    assert matrix.shape == (len(vocab), 3)
    np.testing.assert_allclose(matrix[vocab.stoi["cat"]], [1, 2, 3])
    assert not matrix[vocab.pad_index].any()
    assert 0 < np.abs(matrix[vocab.stoi["unseen"]]).max() < 1  # small random vector
    assert stats.found == 2 and stats.malformed_lines == 2
    assert stats.vocab_coverage == pytest.approx(2 / 3)
    assert stats.token_coverage == pytest.approx(5 / 6)


def test_txt_gz_and_zip(tmp_path, vocab):
    (tmp_path / "v.3d.txt").write_text(LINES)
    with gzip.open(tmp_path / "v.3d.txt.gz", "wt") as out:
        out.write(LINES)
    with zipfile.ZipFile(tmp_path / "glove.zip", "w") as archive:
        archive.writestr("glove.6B.3d.txt", LINES)
        archive.writestr("glove.6B.2d.txt", "the 1 2\n")
    for name in ("v.3d.txt", "v.3d.txt.gz"):
        check(*load_vectors(tmp_path / name, vocab), vocab)
    check(*load_vectors(tmp_path / "glove.zip", vocab, dim=3), vocab)
    with pytest.raises(ValueError, match="cannot choose"):
        load_vectors(tmp_path / "glove.zip", vocab)


def test_dimension_mismatch_is_an_error(tmp_path, vocab):
    (tmp_path / "v.txt").write_text(LINES)
    with pytest.raises(ValueError, match="dimension 3, expected 50"):
        load_vectors(tmp_path / "v.txt", vocab, dim=50)


def test_unknown_name_is_clear(vocab):
    with pytest.raises(FileNotFoundError, match="glove.6B"):
        load_vectors("no-such-vectors", vocab)


def test_download_by_name_is_cached(tmp_path, vocab, monkeypatch):
    source = tmp_path / "server" / "glove.6B.zip"
    source.parent.mkdir()
    with zipfile.ZipFile(source, "w") as archive:
        archive.writestr("glove.6B.3d.txt", LINES)
    monkeypatch.setitem(vectors.GLOVE_URLS, "glove.6B", source.as_uri())
    monkeypatch.setenv("SENTIMENT_CACHE", str(tmp_path / "cache"))
    check(*load_vectors("glove.6B.3d", vocab), vocab)
    cached = tmp_path / "cache" / "glove.6B.zip"
    assert cached.exists() and not cached.with_name("glove.6B.zip.part").exists()
    source.unlink()  # a second use must not download again
    check(*load_vectors("glove.6B.3d", vocab), vocab)


def test_download_rejects_a_broken_archive(tmp_path):
    source = tmp_path / "broken.zip"
    source.write_bytes(b"not a zip")
    with pytest.raises(OSError, match="not a valid zip"):
        download(source.as_uri(), tmp_path / "cache" / "broken.zip")
    assert not (tmp_path / "cache" / "broken.zip").exists()


def test_a_failed_download_is_one_clear_error_and_leaves_nothing(tmp_path):
    """Unreachable, then a local server on 127.0.0.1 that promises 1 MB and drops the
    connection after 1 KB: a FetchError naming the URL and the offline way, nothing cached."""
    import socket
    import threading

    from sentiment.data.sources import FetchError

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]  # nothing listens there once closed
    with pytest.raises(FetchError, match=rf"127.0.0.1:{port}.*--vectors FILE"):
        download(f"http://127.0.0.1:{port}/glove.6B.zip", tmp_path / "cache" / "a.zip")

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def drop_midway():
        connection, _ = server.accept()
        connection.recv(65536)
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n" + b"x" * 1024)
        connection.close()

    thread = threading.Thread(target=drop_midway, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.getsockname()[1]}/glove.6B.zip"
    with pytest.raises(FetchError, match="could not download"):
        download(url, tmp_path / "cache" / "glove.6B.zip")
    thread.join(timeout=10)
    server.close()
    assert list((tmp_path / "cache").iterdir()) == []  # no partial file left behind


@needs(GLOVE50)
def test_real_glove_covers_most_tokens(synthetic_dir):
    vocab = Vocab.build([["the", "movie", "was", "great", "zxqv"], ["the", "film"]])
    matrix, stats = load_vectors(GLOVE50, vocab)
    assert stats.dim == 50 and matrix.shape == (len(vocab), 50)
    assert stats.token_coverage > 0.8 and stats.found == 5

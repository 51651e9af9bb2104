"""The small RESP client of the pushx sides (drivers/redis/wire.py), against the real Redis."""

from __future__ import annotations

import socket
import threading

import pytest

from drivers.redis import wire
from tests.drivers.redis_helpers import HOST, PORT, delete_keys, unique_key


@pytest.fixture
def conn():
    c = wire.Connection(HOST, PORT)
    yield c
    c.close()


def test_replies_of_every_kind(conn) -> None:
    key = unique_key("wire")
    try:
        assert conn.call("PING") == b"PONG"
        assert conn.call("GET", key) is None  # null bulk string
        assert conn.call("RPUSH", key, b"\x00\r\n\xff", "zaż", 7, 1.5) == 4  # integer; binary-safe bulk strings
        assert conn.call("LRANGE", key, 0, -1) == [b"\x00\r\n\xff", "zaż".encode(), b"7", b"1.5"]
        assert conn.call("BLPOP", unique_key("none"), "0.01") is None  # null array
    finally:
        delete_keys(key)


def test_an_error_reply_is_raised_after_the_whole_pipeline_was_read(conn) -> None:
    key = unique_key("wire")
    try:
        conn.call("SET", key, "a string")
        with pytest.raises(wire.ReplyError, match="WRONGTYPE"):
            conn.pipeline([("RPUSH", key, "x"), ("GET", key)])
        assert conn.call("GET", key) == b"a string"  # the connection is still in step
    finally:
        delete_keys(key)


def test_refused_and_closed_connections_are_wire_errors() -> None:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    with pytest.raises(wire.WireError, match="refused"):
        wire.Connection(HOST, port, connect_timeout=2)
    server = socket.socket()
    server.bind((HOST, 0))
    server.listen(1)

    def hang_up() -> None:
        peer, _ = server.accept()
        peer.recv(100)
        peer.close()

    threading.Thread(target=hang_up, daemon=True).start()
    try:
        with pytest.raises(wire.WireError, match="closed"):
            wire.Connection(HOST, server.getsockname()[1], connect_timeout=2, timeout=5)
    finally:
        server.close()

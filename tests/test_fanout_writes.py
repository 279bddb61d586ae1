"""Notifications written straight to a WebSocket from the emitting greenlet
(``realtime.emit._write_now``): frames must stay whole and in order, also when the socket's
buffer fills up in the middle of one and other greenlets write to the same socket meanwhile.
The fan-out benchmark (bench/fanout.py) and tests/test_realtime.py's live servers run the
common path; this drives the rare one on a real gevent socket pair."""

from __future__ import annotations

import socket
import struct
from typing import Any

import gevent
import gevent.socket
import pytest
from geventwebsocket.websocket import Stream, WebSocket

from marketplace.realtime import emit


class _Handler:
    """What gevent-websocket's WebSocket needs of its WSGI handler."""

    def __init__(self, sock: Any) -> None:
        self.socket = sock
        self.rfile = sock.makefile("rb")


def _frames(data: bytes) -> list[str]:
    """Decode unmasked text frames (every byte must belong to a whole frame)."""
    out, i = [], 0
    while i < len(data):
        assert data[i] == 0x81, f"not a final text frame at byte {i}"
        length, i = data[i + 1] & 0x7F, i + 2
        if length == 126:
            (length,), i = struct.unpack("!H", data[i:i + 2]), i + 2
        elif length == 127:
            (length,), i = struct.unpack("!Q", data[i:i + 8]), i + 8
        out.append(data[i:i + length].decode())
        i += length
    assert i == len(data)
    return out


@pytest.mark.parametrize("size", [1, 125, 126, 65535, 65536, 70000])
def test_the_frame_is_what_gevent_websocket_writes(size):
    a, b = gevent.socket.socketpair()
    try:
        ws = WebSocket({}, Stream(_Handler(a)), _Handler(a))
        message = ('42["notification",{"title":"Caf\u00e9 \\"x\\""}]' * 2000)[:size]
        ws.send(message)
        expected = bytearray()
        while len(expected) < len(message.encode()) + 2:
            expected.extend(b.recv(1 << 20))
        frame = emit._ws_frame(message.encode())
        assert frame == bytes(expected)
        assert emit._write_now(ws, frame)
        got = bytearray()
        while len(got) < len(frame):
            got.extend(b.recv(1 << 20))
        assert got == frame
    finally:
        a.close()
        b.close()


def test_a_frame_cut_short_by_a_full_buffer_is_finished_before_any_other_write():
    a, b = gevent.socket.socketpair()
    try:
        handler = _Handler(a)
        ws = WebSocket({}, Stream(handler), handler)
        sent, queued = [], []
        for k in range(64):  # 64 KB frames until the buffer is full
            text = f"{k:04d}" + "x" * 65532
            if ws in emit._finishing or not emit._write_now(ws, emit._ws_frame(text.encode())):
                queued.append(text)  # the emitter would queue it for the writer greenlet
            else:
                sent.append(text)
            if queued:
                break
        assert ws in emit._finishing, "the buffer never filled up"
        assert queued and sent

        # meanwhile the connection's writer greenlet and a pong try to write to it
        later = [gevent.spawn(ws.send, text) for text in queued]
        pong = gevent.spawn(ws.send_frame, b"ping-payload", WebSocket.OPCODE_PONG)
        received = bytearray()

        def read() -> None:
            while True:
                chunk = b.recv(1 << 20)
                if not chunk:
                    return
                received.extend(chunk)

        reader = gevent.spawn(read)
        gevent.joinall([*later, pong], timeout=10, raise_error=True)
        assert ws not in emit._finishing and ws.raw_write is not None
        a.shutdown(socket.SHUT_WR)  # the reader's end of file
        reader.join(timeout=10)
        assert reader.dead
    finally:
        a.close()
        b.close()

    # the pong frame (opcode 0xA) went after the frame being finished: split it out
    data = bytes(received)
    pong_frame = bytes([0x8A, len(b"ping-payload")]) + b"ping-payload"
    assert data.count(pong_frame) == 1
    before, after = data.split(pong_frame)
    # every frame whole, the ones written at once first and in order, then the queued ones
    assert _frames(before + after) == sent + queued
    assert len(before) >= sum(len(emit._ws_frame(t.encode())) for t in sent)


def test_a_socket_another_greenlet_is_writing_to_is_left_alone():
    a, b = gevent.socket.socketpair()
    try:
        handler = _Handler(a)
        ws = WebSocket({}, Stream(handler), handler)
        big = "y" * (4 << 20)  # more than the buffer: the sending greenlet waits on the socket
        writer = gevent.spawn(ws.send, big)
        gevent.sleep(0)  # it writes what fits, then waits
        assert a._write_event.callback is not None
        assert not emit._write_now(ws, emit._ws_frame(b"must be queued"))
        received = bytearray()
        total = len(emit._ws_frame(big.encode()))
        while len(received) < total:
            received.extend(b.recv(1 << 20))
        writer.join(timeout=10)
        assert _frames(bytes(received)) == [big]
    finally:
        a.close()
        b.close()


def test_only_a_plain_gevent_socket_is_written_to_directly():
    """A socket of any other kind (gevent's SSLSocket is a subclass) keeps its own write
    path: its bytes must go through the TLS layer."""

    class Wrapped(gevent.socket.socket):
        pass

    a, b = gevent.socket.socketpair()
    wrapped = Wrapped(fileno=a.detach())
    try:
        ws = WebSocket({}, Stream(_Handler(wrapped)), _Handler(wrapped))
        assert not emit._write_now(ws, emit._ws_frame(b"x"))
    finally:
        wrapped.close()
        b.close()


def test_an_upgraded_connection_s_websocket_is_known_while_its_request_runs():
    """A browser connects with long-polling and then upgrades: the WebSocket comes with the
    upgrade request (?sid=...&transport=websocket), which runs as long as it lives."""
    ws, seen = object(), []

    def inner(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(dict(emit._UPGRADED))
        if environ.get("fail"):
            raise RuntimeError("the connection broke")
        return []

    app = emit.track_upgrades(inner)
    app({"wsgi.websocket": ws, "QUERY_STRING": "EIO=4&transport=websocket&sid=abc"}, None)
    app({"wsgi.websocket": ws, "QUERY_STRING": "EIO=4&transport=websocket"}, None)  # no sid
    app({"QUERY_STRING": "EIO=4&transport=polling&sid=abc"}, None)  # a poll
    with pytest.raises(RuntimeError):
        app({"wsgi.websocket": ws, "QUERY_STRING": "transport=websocket&sid=xyz", "fail": 1},
            None)
    assert seen == [{"abc": ws}, {}, {}, {"xyz": ws}]
    assert emit._UPGRADED == {}

"""The one place that emits: committed notifications and live-only signals, each to its
recipient's private room (through Redis when configured)."""

from __future__ import annotations

import json
from typing import Any

from engineio import packet as eio_packet
from socketio import PubSubManager, packet

from marketplace.extensions import socketio


def room_for(user_id: int) -> str:
    return f"user:{user_id}"


class PreEncoded(str):
    """One Socket.IO event argument that is JSON text already."""


class Packet(packet.Packet):
    """Socket.IO packets as this server writes them. It never sends binary payloads, so no
    packet is walked looking for bytes; and an event whose argument is ``PreEncoded`` is
    written around that text instead of encoding it again."""

    uses_binary_events = False

    def encode(self) -> Any:
        data = self.data
        if (self.packet_type == packet.EVENT and self.namespace in (None, "/") and self.id is None
                and isinstance(data, list) and len(data) == 2
                and isinstance(data[1], PreEncoded)):
            return f"{packet.EVENT}[{json.dumps(data[0])},{data[1]}]"
        return super().encode()


def emit_events(events: list[tuple[int, dict[str, Any]]]) -> None:
    """Deliver committed notifications to their recipients' private rooms (through Redis
    when configured, so every server process's clients get them). Within one process each
    goes out as the JSON text the outbox encoded once; through Redis, whose messages are JSON
    themselves, as the object."""
    server = socketio.server
    if isinstance(server.manager, PubSubManager):
        for user_id, event in events:
            socketio.emit("notification", event, to=room_for(user_id))
        return
    # One process: what ``Manager.emit`` does for a room, without the layers above it per
    # event (Flask-SocketIO's and python-socketio's emit, a Packet object): the Engine.IO
    # packet is written around the text the outbox encoded, then queued for every sid in the
    # recipient's room.
    eio, rooms = server.eio, server.manager.get_participants
    for user_id, event in events:
        wire = getattr(event, "wire", None)
        if wire is None:
            socketio.emit("notification", event, to=room_for(user_id))
            continue
        frame = eio_packet.Packet(eio_packet.MESSAGE, f'{packet.EVENT}["notification",{wire}]')
        for _sid, eio_sid in rooms("/", room_for(user_id)):
            eio.send_packet(eio_sid, frame)


def emit_signals(signals: list[tuple[int, str, dict[str, Any]]]) -> None:
    """Deliver committed live-only hints (docs/events.md, "Live-only signals")."""
    for user_id, name, data in signals:
        socketio.emit(name, data, to=room_for(user_id))

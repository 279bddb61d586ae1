"""The one place that emits: committed notifications and live-only signals, each to its
recipient's private room (through Redis when configured)."""

from __future__ import annotations

import json
from typing import Any

from socketio import PubSubManager, packet

from marketplace.extensions import socketio
from marketplace.privacy import ACCOUNT_ERASED


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
    spliced = not isinstance(socketio.server.manager, PubSubManager)
    for user_id, event in events:
        wire = getattr(event, "wire", None) if spliced else None
        socketio.emit("notification", PreEncoded(wire) if wire else event, to=room_for(user_id))


def emit_signals(signals: list[tuple[int, str, dict[str, Any]]]) -> None:
    """Deliver committed live-only hints (docs/events.md, "Live-only signals")."""
    for user_id, name, data in signals:
        socketio.emit(name, data, to=room_for(user_id))
        if name == ACCOUNT_ERASED:
            disconnect_user(user_id)


def disconnect_user(user_id: int) -> None:
    """Close every connection of ``user_id`` (an erased account) and its room. This process's
    connections are disconnected here; ``close_room`` goes through Redis to the others, so
    none of them delivers anything more to the room."""
    room = room_for(user_id)
    manager = socketio.server.manager
    for sid, _eio_sid in list(manager.get_participants("/", room)):
        socketio.server.disconnect(sid, namespace="/")
    socketio.close_room(room, namespace="/")

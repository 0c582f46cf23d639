"""Rooms: one per open document, loaded lazily and unloaded when idle."""

from server.rooms.lifecycle import RoomEvent, RoomState
from server.rooms.registry import Rooms
from server.rooms.room import ChangeEvent, Peer, Room, RoomSettings

__all__ = ["ChangeEvent", "Peer", "Room", "RoomEvent", "RoomSettings", "RoomState", "Rooms"]

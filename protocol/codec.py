"""One encoder and one typed decoder per direction, reused for every frame.

msgspec's performance notes: build Encoder/Decoder objects once and reuse
them; decoding straight into the tagged union validates types and bounds in
the same pass, so a frame either becomes a well-typed message or raises
``msgspec.DecodeError`` / ``msgspec.ValidationError`` (the server turns those
into a typed reject).
"""

from __future__ import annotations

import msgspec

from protocol.messages import Command, Event

_encoder = msgspec.msgpack.Encoder()
_command_decoder = msgspec.msgpack.Decoder(Command)
_event_decoder = msgspec.msgpack.Decoder(Event)

encode = _encoder.encode
encode_into = _encoder.encode_into


def decode_command(frame: bytes) -> Command:
    """Decode one command frame. Raises ``msgspec.DecodeError`` (a subclass
    ``ValidationError`` for wrong types, values or unknown tags)."""
    return _command_decoder.decode(frame)


def decode_event(frame: bytes) -> Event:
    """Decode one event frame (client side)."""
    return _event_decoder.decode(frame)

"""The wire contract shared by the venue and its clients."""

from protocol.codec import decode_command, decode_event, encode
from protocol.messages import *  # noqa: F401,F403  (the message catalogue)
from protocol.messages import PRICE_SCALE, PROTOCOL_VERSION

__all__ = ["encode", "decode_command", "decode_event", "PRICE_SCALE", "PROTOCOL_VERSION"]

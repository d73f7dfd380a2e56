"""Guided exercises: protocols as data files and a runner with counters, hold timers and cues."""

from dorsimeter.protocols.protocol import (
    Protocol,
    get_protocol,
    list_protocols,
    load_protocol,
    parse_protocol,
)
from dorsimeter.protocols.runner import CountedRep, ProtocolRunner, ProtocolState

__all__ = ["CountedRep", "Protocol", "ProtocolRunner", "ProtocolState", "get_protocol",
           "list_protocols", "load_protocol", "parse_protocol"]

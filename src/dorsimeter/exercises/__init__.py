"""Guided exercises: protocols as data files and a runner with counters, hold timers and cues."""

from dorsimeter.exercises.protocol import (
    Protocol,
    get_protocol,
    list_protocols,
    load_protocol,
    parse_protocol,
)
from dorsimeter.exercises.runner import CountedRep, ProtocolRunner, ProtocolState

__all__ = ["CountedRep", "Protocol", "ProtocolRunner", "ProtocolState", "get_protocol",
           "list_protocols", "load_protocol", "parse_protocol"]

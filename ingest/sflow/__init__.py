"""sFlow v5 decoding and encoding.

    from ingest.sflow import decode_datagram, encode_datagram, DecodeError

The names are imported when first used: the flow compiler (sflowpipe/flowspec) reads the
discard-reason table of this package, and importing it must not load the whole decoder (the API's
start-up checks its definitions with that compiler; README "Start-up").
"""

from importlib import import_module

_WHERE = {"decode_datagram": "ingest.sflow.datagram", "encode_datagram": "ingest.sflow.encode",
          "DecodeError": "ingest.sflow.errors", "DecodeReason": "ingest.sflow.errors"}

__all__ = ["DecodeError", "DecodeReason", "decode_datagram", "encode_datagram"]


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ingest.sflow' has no attribute {name!r}")

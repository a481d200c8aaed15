"""sFlow v5 decoding and encoding.

    from ingest.sflow import decode_datagram, encode_datagram, DecodeError
"""

from ingest.sflow.datagram import decode_datagram
from ingest.sflow.encode import encode_datagram
from ingest.sflow.errors import DecodeError

__all__ = ["DecodeError", "decode_datagram", "encode_datagram"]

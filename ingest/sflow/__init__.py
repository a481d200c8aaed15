"""sFlow v5 decoding and encoding.

    from ingest.sflow import decode_datagram, encode_datagram, DecodeError
"""

from ingest.sflow.datagram import decode_datagram
from ingest.sflow.encode import encode_datagram
from ingest.sflow.errors import DecodeError, DecodeReason

__all__ = ["DecodeError", "DecodeReason", "decode_datagram", "encode_datagram"]

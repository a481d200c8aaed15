"""A message ClickHouse refuses must not stall the sink: find it, dead-letter it, write the rest.

Flow batches go to ClickHouse still Avro-encoded (the sink reads only their framing), so a batch
can pass the sink's checks and still make ClickHouse refuse the whole insert: an agent address
that is not an address, columns of different lengths, a body cut short inside its columns. The
runner retried such an insert forever and nothing behind it was written. Here an insert refused
for its *data* is split by source message: each half is inserted again, a half refused again is
split further, and a single message refused on its own goes to the dead-letter topic with
ClickHouse's error (stage ``clickhouse:TABLE``, reason ``insert_refused``). Every other failure
(ClickHouse away, overloaded, read-only, a timeout) is raised as before: the runner retries the
whole flush with backoff and loses nothing.

Retries stay exactly-once: the halves are fixed by the buffered messages, so a flush retried after
an outage in the middle of a bisection splits the same way and inserts each half with the same
deduplication token (ClickHouse drops the halves it already has), and a message already
dead-lettered is not sent again.
"""

from __future__ import annotations

import logging
from typing import Callable, Protocol, Sequence, TypeVar

import pyarrow as pa
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from sflowpipe.deadletter import AcknowledgedDeadLetters, dead_letter
from sflowpipe.kafka import KafkaClients

log = logging.getLogger(__name__)

REASON = "insert_refused"  # the dead_letter record's reason code

# ClickHouse error codes (src/Common/ErrorCodes.cpp) that say "this data cannot go in": parsing the
# input, Avro or a value in it, arrays of unequal lengths under ARRAY JOIN. Not the codes of a
# schema that does not match (TYPE_MISMATCH, NO_SUCH_COLUMN...): every message would be refused,
# and that is the operator's fault to fix while the sink waits, not input to dead-letter.
DATA_ERROR_CODES = frozenset({
    6,    # CANNOT_PARSE_TEXT
    26,   # CANNOT_PARSE_QUOTED_STRING
    27,   # CANNOT_PARSE_INPUT_ASSERTION_FAILED
    32,   # ATTEMPT_TO_READ_AFTER_EOF
    33,   # CANNOT_READ_ALL_DATA
    38,   # CANNOT_PARSE_DATE
    41,   # CANNOT_PARSE_DATETIME
    69,   # ARGUMENT_OUT_OF_BOUND
    70,   # CANNOT_CONVERT_TYPE
    72,   # CANNOT_PARSE_NUMBER
    117,  # INCORRECT_DATA
    128,  # TOO_LARGE_ARRAY_SIZE
    131,  # TOO_LARGE_STRING_SIZE
    190,  # SIZES_OF_ARRAYS_DONT_MATCH (a batch's columns of different lengths)
    321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
    349,  # CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
    675,  # CANNOT_PARSE_IPV4
    676,  # CANNOT_PARSE_IPV6
})
STD_EXCEPTION = 1001  # ClickHouse wraps the Avro library's errors in it (a body cut short: "EOF reached")
AVRO_EXCEPTION = "avro::Exception"  # the wrapped exception's C++ type, as ClickHouse names it


def is_data_error(e: BaseException) -> bool:
    """True when ClickHouse (or Arrow, building the insert) refused the data itself; False when the
    server is away or unwell, or the error is not known to be about the data (retried, not split)."""
    if isinstance(e, (pa.ArrowInvalid, pa.ArrowTypeError)):
        return True
    if not isinstance(e, DatabaseError) or isinstance(e, OperationalError):
        return False  # OperationalError: connection, timeout
    code = getattr(e, "code", None)
    if code == STD_EXCEPTION:
        return AVRO_EXCEPTION in str(e)  # other std::exceptions (bad_alloc...) are the server's state
    return code in DATA_ERROR_CODES


M = TypeVar("M")


def insert_isolating(messages: Sequence[M], write: Callable[[Sequence[M], bool], None],
                     reject: Callable[[M, BaseException], None]) -> None:
    """``write(part, whole)`` the messages; when it raises a data error, write each half, down to
    single messages, and ``reject`` each that is refused alone. ``whole`` is True for the first
    write only. Other errors (and ``reject``'s) propagate: nothing was lost, the caller retries."""
    _isolate(messages, write, reject, True)


def _isolate(part: Sequence[M], write, reject, whole: bool) -> None:
    try:
        write(part, whole)
        return
    except Exception as e:
        if not is_data_error(e):
            raise
        if len(part) == 1:
            reject(part[0], e)
            return
        log.warning("clickhouse: an insert of %d messages was refused (%s): inserting them by halves",
                    len(part), first_line(e))
    mid = len(part) // 2
    _isolate(part[:mid], write, reject, False)
    _isolate(part[mid:], write, reject, False)


def first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:300]


class Encoder(Protocol):  # schemas.codec.Codec
    def encode(self, stem: str, datum: dict) -> bytes: ...


class PoisonOutbox:
    """The sink's dead letters: one message at a time, acknowledged before it is counted
    (DeadLetterUndelivered when the broker did not take it: the flush fails and is retried)."""

    def __init__(self, clients: KafkaClients, codec: Encoder, topic: str, timeout_s: float = 30.0) -> None:
        self.topic = topic
        self.out = AcknowledgedDeadLetters(clients, codec, topic, timeout_s)
        self.writer = self.out.writer

    def write(self, stage: str, error: BaseException, raw: bytes, key: bytes | None, source_topic: str) -> None:
        self.out.write([(dead_letter(stage, REASON, str(error).strip(), raw), key, source_topic)])


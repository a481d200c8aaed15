"""The schemas' example payloads are written from ingest's real decode and batching path."""

from __future__ import annotations

from ingest.examples import example_datums
from schemas.codec import AvroCodec, schema_set
from schemas.examples import DIR


def test_a_datum_for_every_schema_that_its_newest_codec_round_trips():
    datums = example_datums()
    stems = set(schema_set().by_stem)
    assert set(datums) == stems
    for stem in stems:
        assert AvroCodec(stem).decode(AvroCodec(stem).encode(datums[stem])) is not None
        assert (DIR / f"{stem}.v1.avro").is_file()  # every schema has released examples

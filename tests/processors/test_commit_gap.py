"""mend_commit_gap against the installed faust-streaming's own consumer bookkeeping: a partition
whose commits stopped (acknowledged offsets start past the committed one, no gap noted) commits
again once the offsets in between were processed, and not before."""

from __future__ import annotations

import faust
import pytest

from processors.app import mend_commit_gap


@pytest.fixture
def consumer(tmp_path):
    app = faust.App("commit-gap-test", broker="kafka://127.0.0.1:1", store="memory://",
                    datadir=str(tmp_path), web_enabled=False)
    return app.consumer  # built, never started: the bookkeeping is plain Python


def test_a_stopped_partition_commits_past_the_skipped_offsets(consumer):
    tp = consumer._new_topicpartition("flow-samples", 1)
    consumer._committed_offset[tp] = 63
    consumer._acked[tp].extend(range(81, 90))  # the stream skipped 63-80 and acknowledged from 81 on
    assert consumer._new_offset(tp) is None  # as seen: the group's offset stays at 63 for good

    assert mend_commit_gap(consumer, tp, processed_next=90) == 64
    assert mend_commit_gap(consumer, tp, processed_next=90) is None  # noted once, until the next commit
    assert consumer._new_offset(tp) == 90  # 64-80 (the gap) and 81-89 (acknowledged): commit 90


def test_nothing_is_committed_past_offsets_not_processed(consumer):
    tp = consumer._new_topicpartition("flow-samples", 0)
    consumer._committed_offset[tp] = 10
    consumer._acked[tp].extend([20, 21])
    assert mend_commit_gap(consumer, tp, processed_next=None) is None  # nothing read since the assignment
    assert mend_commit_gap(consumer, tp, processed_next=15) is None  # 15-19 not processed
    assert consumer._new_offset(tp) is None


def test_a_partition_committing_normally_is_left_alone(consumer):
    tp = consumer._new_topicpartition("flow-samples", 2)
    consumer._committed_offset[tp] = 10
    consumer._acked[tp].extend([11, 12, 13])
    assert mend_commit_gap(consumer, tp, processed_next=14) is None
    assert not consumer._gap[tp]
    assert consumer._new_offset(tp) == 14

"""A worker killed mid-run (SIGKILL) and restarted, against an uninterrupted reference fed the same
traffic at the same time: no threshold event is raised twice for a flow that stayed over, the flow
values after the restart match the reference's (no overshoot while the backlog replays), and
reports resume within a bound."""

from __future__ import annotations

import re
import threading
import time
from datetime import datetime, timezone

import pytest

from ingest.replay import publish_kafka
from processors.app import REPLAY_LAG_S, batch_time
from sflowpipe.settings import ProcessorSettings
from tests.kafka_helpers import newest_timestamp, read_topic
from tests.processors.processor_harness import ProcessorProcess
from tests.processors.test_app_integration import generated, ingest_settings
from tests.waiting import until

pytestmark = pytest.mark.kafka

DEFS = {"flows": {"pair": {"keys": "ipsource,ipdestination", "value": "bytes", "t": 10}},
        "thresholds": {"elephant": {"metric": "pair", "value": 1_000_000, "byFlow": True, "timeout": 10}}}
ELEPHANTS = {f"10.1.{i}.10,192.0.2.{10 + i}" for i in range(3)}
TRAFFIC_S = 55  # generated traffic, 20 datagrams/s
KILL_AT_S = 20  # into the traffic: the elephants' events have fired, a checkpoint holds them
RESUME_BOUND_S = 20  # measured 7.0-14.9 s on the 2-core test machine (README, "Processor restarts")
# the victim runs with the default session timeout (the harness's is shorter): the resume time it shows
# is the one a deployment gets
DEFAULT_SESSION = {"SFLOWPIPE_PROCESSORS__SESSION_TIMEOUT_S": str(ProcessorSettings.model_fields["session_timeout_s"].default)}


def test_batch_time_counts_a_replayed_batch_at_its_receive_time():
    now = 1_000_000.0
    assert batch_time({"receive_time_us": [int((now - 0.5) * 1e6)]}, now) == now  # live (or small clock skew)
    late = now - REPLAY_LAG_S - 30
    assert batch_time({"receive_time_us": [int(late * 1e6), int((late + 1) * 1e6)]}, now) == late + 1
    assert batch_time({"receive_time_us": []}, now) == now


def elephant_values(msgs: list[dict], since: float) -> dict[tuple[str, str, str], list[tuple[float, float]]]:
    """(agent, dataSource, flow key) -> [(report time, value)] of the elephants, reports after ``since``."""
    out: dict = {}
    for m in msgs:
        ts = m["timestamp"] / 1000
        if m["flow"] != "pair" or ts <= since:
            continue
        for e in m["flows"]:
            if e["key"] in ELEPHANTS:
                out.setdefault((m["agent"], e["dataSource"], e["key"]), []).append((ts, e["value"]))
    return out


def near(series: list[tuple[float, float]], ts: float, within: float = 3.0) -> list[float]:
    """Values reported within ``within`` s of ``ts``: two workers' values at one instant differ by when each
    processed the same batches (and, while one catches up, by REPLAY_LAG_S: processors/app.py batch_time);
    the reference's envelope is the yardstick."""
    return [v for t, v in series if abs(t - ts) <= within]


def phases(log: str, since: float) -> str:
    """When the restarted worker reached each start-up step, in s after ``since`` (the SIGKILL)."""
    out = []
    for label, marker in (("joining", "(Re-)joining group"), ("assigned", "Setting newly assigned partitions"),
                          ("ready", "[^Worker]: Ready"), ("restored", "restored state of agent")):
        i = log.find(marker)
        m = re.search(r"\[?(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})", log[log.rfind("\n", 0, i) + 1:i]) if i >= 0 else None
        if m:
            ts = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=timezone.utc).timestamp()
            out.append(f"{label} {ts - since:.1f}")
    return ", ".join(out)


def test_killed_worker_restarts_without_repeats_or_overshoot(kafka_bootstrap, topic_prefix, tmp_path):
    ref_prefix, kill_prefix = topic_prefix + "ref.", topic_prefix + "kill."
    ref = ProcessorProcess(kafka_bootstrap, ref_prefix, tmp_path, DEFS, app_id=f"{ref_prefix}app")
    victim = ProcessorProcess(kafka_bootstrap, kill_prefix, tmp_path, DEFS, app_id=f"{kill_prefix}app",
                              extra_env=DEFAULT_SESSION)
    ref.start()
    victim.start()
    restarted = None
    t0 = time.time()
    datagrams = generated(TRAFFIC_S, 20, t0)
    feeders = [threading.Thread(target=publish_kafka, args=(datagrams, ingest_settings(kafka_bootstrap, p, tmp_path / p)),
                                kwargs={"speed": 1, "keep_timestamps": True}) for p in (ref_prefix, kill_prefix)]
    try:
        for f in feeders:
            f.start()
        # the kill comes KILL_AT_S into the traffic, and not before the victim's elephant events have
        # fired and a checkpoint after them holds them (on a loaded machine that can be later)
        time.sleep(max(0.0, t0 + KILL_AT_S - time.time()))  # a point in the traffic's timeline
        fired = read_topic(kafka_bootstrap, kill_prefix + "events",
                           lambda m: {e["flowKey"] for e in m} >= ELEPHANTS, timeout=60)
        assert {e["flowKey"] for e in fired} >= ELEPHANTS, fired
        fired_at = max(e["timestamp"] for e in fired) / 1000
        until(lambda: (newest_timestamp(kafka_bootstrap, f"{kill_prefix}app-agent-state-changelog") or 0) > fired_at,
              timeout=60)
        victim.kill()
        killed_at = time.time()
        first_log = victim.log.read_text(errors="replace")
        restarted = ProcessorProcess(kafka_bootstrap, kill_prefix, tmp_path, DEFS, app_id=f"{kill_prefix}app",
                                     extra_env=DEFAULT_SESSION)
        restarted.start()
        for f in feeders:
            f.join(TRAFFIC_S + 60)
        end = t0 + TRAFFIC_S
        done = lambda m: any(x["timestamp"] / 1000 > end for x in m)  # noqa: E731
        ref_flows = read_topic(kafka_bootstrap, ref_prefix + "flows", done, timeout=60)
        kill_flows = read_topic(kafka_bootstrap, kill_prefix + "flows", done, timeout=60)
        ref_events = read_topic(kafka_bootstrap, ref_prefix + "events", lambda m: False, timeout=3)
        kill_events = read_topic(kafka_bootstrap, kill_prefix + "events", lambda m: False, timeout=3)
    finally:
        assert ref.stop() == 0, ref.log.read_text()[-3000:]
        if restarted is not None and restarted.proc is not None:
            restarted.stop()
        elif victim.proc.poll() is None:
            victim.kill()

    assert "elephant" in first_log and "restored state of agent" in restarted.log.read_text()
    # events: the reference raised one per elephant; the killed-and-restarted worker the same, none twice
    def keys(events):
        return sorted((e["thresholdID"], e["agent"], e["dataSource"], e["flowKey"]) for e in events)
    assert {k[3] for k in keys(ref_events)} == ELEPHANTS and len(keys(ref_events)) == len(set(keys(ref_events)))
    assert keys(kill_events) == keys(ref_events), (
        "the restart repeated (or lost) threshold events",
        [(e["flowKey"], e["dataSource"], e["timestamp"] / 1000 - killed_at) for e in kill_events])
    assert all(e["timestamp"] / 1000 < killed_at for e in kill_events)

    # reports resume within the bound
    after = [m["timestamp"] / 1000 for m in kill_flows if m["timestamp"] / 1000 > killed_at]
    assert after, restarted.log.read_text()[-3000:]
    resumed = min(after) - killed_at
    print(f"reports resumed {resumed:.1f} s after the SIGKILL ({phases(restarted.log.read_text(), killed_at)})")
    assert resumed < RESUME_BOUND_S

    # flow values after the restart: within a tolerance of the uninterrupted run at the same time
    ref_v, kill_v = elephant_values(ref_flows, killed_at), elephant_values(kill_flows, killed_at)
    assert set(kill_v) == set(ref_v) and len(ref_v) == 3
    # every report after the restart, the catch-up included (a dashboard shows those too)
    over = [(v / max(near(ref_v[k], ts)), ts - killed_at) for k, series in kill_v.items() for ts, v in series if ts < end]
    under = [(v / min(near(ref_v[k], ts)), ts - killed_at) for k, series in kill_v.items() for ts, v in series if ts < end]
    print("restarted / reference envelope: max %.2f (%.1f s after the SIGKILL), min %.2f (%.1f s), %d reports"
          % (*max(over), *min(under), len(over)))
    over, under = [r for r, _ in over], [r for r, _ in under]
    assert max(over) < 1.25, "overshoot while the backlog replays"
    assert min(under) > 0.75, "state lost in the restart"

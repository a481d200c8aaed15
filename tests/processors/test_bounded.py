"""Bounded evaluation (issue 12, "Why" 1): filter patterns run in linear time, patterns that need
backtracking are refused where the flow is made, and a definition that runs past its CPU budget on a
batch is disabled with a ``budget`` event while the others go on; a DELETE stops it at once."""

from __future__ import annotations

import threading
import time

import pytest

from sflowpipe.config_plane import DefinitionError, parse
from processors.engine import BUDGET_EVENT, Engine
from sflowpipe.flowspec import FlowSpecError, compile_filter
from tests.payload_frames import flow_batch, http, record_sample, socket4
from tests.waiting import until

AGENT = "192.0.2.200"
ISSUE = "ipsource~" + ".*" * 40 + "x"  # the filter that froze the workers (issue 12)


class _NoEnrich:
    def enrich_batch(self, batch):
        return {}


def url_batch(uris: list[str]) -> dict:
    """One flow-sample batch of HTTP transaction samples with these URIs, decoded as the worker does."""
    return flow_batch([record_sample((http(uri=u), socket4()), i + 1) for i, u in enumerate(uris)])


def engine(budget_s: float = 5.0, **flows) -> Engine:
    e = Engine(_NoEnrich(), clock=time.time, budget_s=budget_s)
    for name, body in flows.items():
        e.apply("flow", name, parse("flow", name, body))
    return e


def counted(e: Engine, flow: str) -> set[str]:
    """Every flow key the flow's table holds (not only the top n)."""
    t, now = e.flows[flow].table, time.time()
    return {k for a in t.agents() for ds in t.data_sources(a) for k, _ in t.values(now, a, ds)}


def tops(e: Engine) -> dict:
    active, _, _ = e.report()
    return {(m["flow"], f["key"]) for m in active for f in m["flows"]}


@pytest.mark.parametrize("expr, construct", [
    ("ipsource~(10)\\1", "\\1"),  # backreference
    ("ipsource~(?=10).*", "(?="),  # lookahead
    ("ipprotocol=6&ipsource~.*(?<!0)", "(?<!"),  # lookbehind, in the second comparison
    ("ipsource~10.*,(?>1)", "(?>"),  # atomic group, in the second pattern of a list
    ("ipsource~1*+0", "*+"),  # possessive quantifier
    ("ipsource~(a{1000}){1000}", "{1000}"),  # too large for a bounded automaton
])
def test_patterns_that_need_backtracking_are_refused_naming_pattern_and_position(expr, construct):
    with pytest.raises(FlowSpecError) as ei:
        compile_filter(expr)
    e = ei.value
    assert e.field == "filter" and e.position == expr.index(construct), (e, e.position)
    assert e.token in expr and construct in e.token and repr(e.token) in str(e)
    # and the API / config path refuses it the same way, with the place in the detail
    with pytest.raises(DefinitionError) as di:
        parse("flow", "bad", {"keys": "ipsource", "filter": expr})
    assert di.value.detail["position"] == expr.index(construct) and di.value.detail["field"] == "filter"


def test_a_pattern_may_hold_groups_alternatives_and_classes_and_the_filter_still_splits():
    f = compile_filter("httpurl~.*\\.(jpg|png)&httpurl!~/[)|&]+.*|httpurl=/x")
    batch = url_batch(["/a.jpg", "/b.png", "/c.gif", "/|.png", "/x"])
    assert f.mask(batch) == [True, True, False, False, True]


PATHOLOGICAL = [".*" * 40 + "x", "(a+)+$", "(a|a)*b", "(a*)*b", "(a|aa)+c", "((a+)+)+b", "(.*a){20}"]


@pytest.mark.parametrize("pattern", PATHOLOGICAL)
def test_pathological_patterns_match_long_values_in_linear_time_with_full_match_semantics(pattern):
    """Each over 64 distinct 3-4 KB URIs (Python's re would take longer than the age of the universe on
    some): one batch well under a second, and the same answers as a full match where re can tell.
    (Fewer than the flow table's 100 keys, so that every match can be read back.)"""
    uris = (["a" * 4000 + s for s in ("", "b", "c", "x")] + ["a" * (3000 + i) + "b" for i in range(40)]
            + ["a" * (3000 + i) + "c" for i in range(20)])
    e = engine(keyed_url={"keys": "httpurl", "value": "frames", "filter": f"httpurl~{pattern}", "t": 10})
    start = time.thread_time()
    e.on_flow_batch(url_batch(uris))
    assert time.thread_time() - start < 1.0
    assert e.evaluation_status("w")["budget_exceeded"] == 0
    got = counted(e, "keyed_url")
    same = {".*" * 40 + "x": lambda u: u.endswith("x"),  # the same languages, decided without a regex
            "(a+)+$": lambda u: set(u) == {"a"},
            "(a|a)*b": lambda u: set(u[:-1]) == {"a"} and u[-1] == "b",
            "(a*)*b": lambda u: set(u[:-1]) <= {"a"} and u[-1] == "b",
            "(a|aa)+c": lambda u: set(u[:-1]) == {"a"} and u[-1] == "c",
            "((a+)+)+b": lambda u: set(u[:-1]) == {"a"} and u[-1] == "b",
            "(.*a){20}": lambda u: u.endswith("a") and u.count("a") >= 20}[pattern]
    assert got == {u for u in uris if same(u)}
    assert got  # every pattern matches some URI: a test of matching, not of refusing


def test_the_issue_pattern_is_accepted_and_runs_on_a_batch_at_once():
    e = engine(issue={"keys": "ipsource", "value": "frames", "filter": ISSUE, "t": 10},
               pair={"keys": "httpurl", "value": "frames", "t": 10})
    start = time.thread_time()
    e.on_flow_batch(url_batch([f"/{i}" for i in range(500)]))
    assert time.thread_time() - start < 1.0
    assert {f for f, _ in tops(e)} == {"pair"}  # no address ends in x; the other flow counted everything


def test_a_flow_over_its_budget_is_disabled_with_an_event_and_the_others_go_on():
    slow = {"keys": "httpurl", "value": "frames", "filter": "httpurl~(.*a){20}", "t": 10}
    e = engine(budget_s=0.02, slow=slow, urls={"keys": "httpurl", "value": "frames", "t": 10})
    batch = url_batch(["a" * (20000 + i) for i in range(60)])
    e.on_flow_batch(batch)
    _, _, events = e.report()
    (ev,) = [x for x in events if x.thresholdID == BUDGET_EVENT]
    assert ev.metric == "slow" and ev.agent == AGENT and ev.value > ev.threshold == 0.02
    status = e.evaluation_status("w")
    assert status["budget_exceeded"] == 1 and "budget 0.02 s" in status["disabled"]["slow"]
    assert {f for f, _ in tops(e)} == {"urls"}  # the other flow counted the batch
    start = time.thread_time()
    e.on_flow_batch(batch)  # disabled: not evaluated again, no second event
    assert time.thread_time() - start < 0.5 and not [x for x in e.report()[2] if x.thresholdID == BUDGET_EVENT]
    # a redefinition is evaluated again (and, cheap now, counts)
    e.apply("flow", "slow", parse("flow", "slow", {**slow, "filter": "httpurl~a+"}))
    e.on_flow_batch(batch)
    assert {f for f, _ in tops(e)} == {"urls", "slow"} and e.evaluation_status("w")["disabled"] == {}


class _StallingEnrich(_NoEnrich):
    """Country lookups whose first call stalls for CPU time (what a hypervisor's steal, charged to the
    running thread, or a cold cache looks like to a budget); later calls are instant."""

    def __init__(self, stall_s: float) -> None:
        self.stall_s = stall_s

    def country(self, addr):
        end, self.stall_s = time.thread_time() + self.stall_s, 0.0
        while time.thread_time() < end:
            pass
        return "NL"


def test_one_overrun_on_a_batch_does_not_disable_a_flow():
    """A budget overrun that does not recur when the batch is evaluated again (the key column it
    computed is cached now) is the machine's, not the definition's: the flow stays on."""
    e = Engine(_StallingEnrich(0.1), clock=time.time, budget_s=0.05)
    e.apply("flow", "geo", parse("flow", "geo", {"keys": "country:httpurl", "value": "frames", "t": 10}))
    e.on_flow_batch(url_batch(["/a", "/b"]))
    assert not [x for x in e.report()[2] if x.thresholdID == BUDGET_EVENT]
    assert e.evaluation_status("w")["disabled"] == {} and {f for f, _ in tops(e)} == {"geo"}


def test_a_delete_from_the_config_thread_stops_the_batch_under_way():
    """The config watcher's thread calls interrupt() while the worker's thread is inside a slow flow:
    the evaluation stops within a budget check, the flow is not disabled (it was deleted), the
    queued DELETE then removes it."""
    slow = parse("flow", "slow", {"keys": "httpurl", "value": "frames", "filter": "httpurl~(.*a){20}", "t": 10})
    e = engine(budget_s=600.0)
    e.apply("flow", "slow", slow)
    batch = url_batch(["a" * (20000 + i) for i in range(400)])  # seconds of matching
    done = threading.Event()
    took: list[float] = []

    def run():
        start = time.monotonic()
        e.on_flow_batch(batch)
        took.append(time.monotonic() - start)
        done.set()

    worker = threading.Thread(target=run)
    worker.start()
    # the batch is under way on the slow flow: the interrupt lands inside it
    until(lambda: e._running is not None and e._running[0].name == "slow", timeout=30, interval=0.005)
    assert not done.is_set()
    sent = time.monotonic()
    e.interrupt("flow", "slow", None)
    assert done.wait(5)
    worker.join()
    assert time.monotonic() - sent < 1.0, took
    e.apply("flow", "slow", None)
    assert "slow" not in e.flows and e.evaluation_status("w")["budget_exceeded"] == 0
    assert not [x for x in e.report()[2] if x.thresholdID == BUDGET_EVENT]


def test_non_finite_numbers_are_refused_in_definitions():
    for body in ({"metric": "x", "value": float("nan")}, {"metric": "x", "value": float("inf")},
                 {"metric": "x", "value": 1, "timeout": float("-inf")}):
        with pytest.raises(DefinitionError):
            parse("threshold", "t", body)
    for field in ("t", "activeTimeout"):
        with pytest.raises(DefinitionError) as ei:
            parse("flow", "f", {"keys": "ipsource", field: float("nan")})
        assert ei.value.detail["field"] == field
    # the engine refuses them too (definitions that reach it without parse())
    with pytest.raises(ValueError):
        Engine(_NoEnrich()).apply("threshold", "t", {"metric": "x", "value": float("nan")})

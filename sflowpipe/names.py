"""sFlow-RT's names, written once: data-source names, flow-key lists and values, agent lists.

Every service that reads or shows these uses this module, so the API, the sinks and the workers
cannot disagree on what ``"1.100"``, ``"ipsource,ipdestination"`` or ``"10.0.0.1;switch1"`` mean.
"""

from __future__ import annotations

import re
from typing import Iterable
from urllib.parse import unquote

__all__ = ["AGENT_COUNTERS", "data_source", "data_sources", "parse_agents", "split_flow_key", "split_keys"]

# sFlow-RT's per-agent session counters of /agents/json (counted by ingest/agents.py, summed by the API)
AGENT_COUNTERS = ("sFlowDatagramsReceived", "sFlowDatagramsLost", "sFlowDatagramsDuplicates",
                  "sFlowDatagramsOutOfOrder", "sFlowFlowSamples", "sFlowFlowLostSamples", "sFlowFlowDuplicateSamples",
                  "sFlowFlowOutOfOrderSamples", "sFlowFlowDrops", "sFlowCounterSamples", "sFlowCounterLostSamples",
                  "sFlowCounterDuplicateSamples", "sFlowCounterOutOfOrderSamples", "sFlowBytesReceived")


def data_source(source_id_type: int, source_id_index: int) -> str:
    """sFlow-RT's dataSource name: the ifIndex (``"3"``) for class 0 (interfaces), else ``"<class>.<index>"``
    (e.g. ``"1.100"`` for an smonVlanDataSource, VLAN 100)."""
    if source_id_type == 0:
        return str(source_id_index)
    return f"{source_id_type}.{source_id_index}"


def data_sources(types: Iterable[int | None], indexes: Iterable[int | None]) -> list[str | None]:
    """The dataSource name of every sample of a batch's columns (None where a column has none).

    Names are memoised for the one call only: a batch repeats a few data sources many times, and a
    cache kept across batches would grow with whatever (type, index) pairs agents send."""
    pairs = list(zip(types, indexes))
    memo = {k: data_source(*k) if None not in k else None for k in set(pairs)}
    return list(map(memo.__getitem__, pairs))


def split_keys(spec: str) -> list[str]:
    """A flow definition's ``keys`` text as key expressions: split on the commas outside ``[...]``
    (a bracketed key function may hold a comma, e.g. ``null:[prefix:ipsource:,:1]:none``), each
    stripped. Empty pieces are kept (the flow compiler refuses them, naming the position);
    ``""`` is ``[]`` (a flow without keys)."""
    if not spec.strip():
        return []
    out, depth, cur = [], 0, []
    for ch in spec:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur).strip())
    return out


def split_flow_key(key: str, fs: str = ",") -> list[str]:
    """A flow key's values: sFlow-RT joins them with the definition's field separator ``fs``
    (``,`` unless the definition says otherwise; sFlow-RT's prometheus app defines its flows with
    a separator no value holds so that values with commas survive). An empty ``fs``: one value."""
    return key.split(fs) if fs else [key]


def parse_agents(spec: str) -> list[str] | None:
    """An agent list in a REST path: ``ALL`` (or nothing) is every agent (None); otherwise addresses
    or host names separated by ``;`` (sFlow-RT's separator; ``,`` is taken too: no address or host
    name holds one), URL-decoded."""
    spec = unquote(spec)
    return None if spec in ("ALL", "") else [a for a in re.split(r"[;,]", spec) if a]

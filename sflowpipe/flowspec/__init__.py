"""sFlow-RT's flow definition language (keys, key functions, filters), compiled column-wise.

A flow definition (sFlow-RT "Defining Flows") names ``keys`` (flow keys or key functions, joined with
``fs`` into the flow key string; none: one flow, key ``""``), a ``value`` (bytes, frames, bps, fps,
requests), an optional ``filter``, the smoothing / top-N parameters ``t`` and ``n``, and sFlow-RT's
``aggMode`` (edge, agent: applied by processors/engine.py) and ``dropped`` (computed over discarded-packet
notifications, processors/discards.py).

Everything here is compiled once into closures that work on whole columns of a decoded
``flow_sample_batch`` datum (a dict of per-sample lists): a key extractor returns the list of the key's
value for every sample (a ``str``, or ``None`` where the sample lacks the key), a filter returns a list of
booleans. Columns are cached per batch in an :class:`EvalContext` under the key's canonical text, so
flows and filters that share a key (on one batch) compute it once.

Value formats follow sFlow-RT's printing: decimal numbers (ports, protocols, ifIndex, vlan, ethernet
type), MACs as 12 upper-case hex digits without separators (``000C29A1B2C3``), ``tcpflags`` as the
9-bit binary string NS CWR ECE URG ACK PSH RST SYN FIN (``000010010`` is SYN+ACK), IPv4 dotted quad,
IPv6 RFC 5952 text as the decoder gives it.

Key functions (``<func>:<arg>:<arg>...``; nest with square brackets, ``country:[or:ipsource:ip6source]``,
or without them when the arity is fixed, ``country:or:ipsource:ip6source``):

``country:<key>``, ``asn:<key>``
    enrichment lookups (``enrich.country`` / ``enrich.asn``), missing when the lookup gives None.
``group:<key>:<groupset>[:<groupset>...]``
    the first group set (in order) that has a group containing the address.
``null:<key>:<default>``
    the key, or ``default`` where the sample lacks it.
``or:<key>:<key>[:<key>...]``
    the first of the keys that the sample has.
``mask:<key>:<bits>[:<bits6>]``
    the address's network prefix, ``10.1.2.0/24`` (IPv6 ``2001:db8::/48``; ``bits6`` for IPv6, else
    ``bits`` capped at the address length).
``prefix:<key>:<sep>:<n>``, ``suffix:<key>:<sep>:<n>``
    the first / last ``n`` ``sep``-separated tokens (``prefix:[x]:/:2`` of ``/metrics/json`` is ``/metrics``).

``oui:<mac key>[:name]``
    the MAC's OUI (``000C29``), or with ``:name`` the vendor registered for it (netaddr's offline IEEE table).
``link:<ifindex key>``
    the name of the imported topology's link with an end at (agent, ifIndex), e.g. ``link:inputifindex``.

Filters: comparisons ``<key> = | != | ~ | !~ <v1>,<v2>,...`` (``~`` full-matches against any of the
patterns), combined with ``&`` (binds tighter), ``|`` and parentheses. A comparison on a key the sample
lacks is false whatever the operator (sFlow-RT only matches flows that have the keys; wrap the key in
``null:`` to compare a default instead), except against the value ``null``, as sFlow-RT's apps write
it: ``link:inputifindex=null`` holds where the sample lacks the key, ``ip_offset!=null`` where it has it.
"""

from sflowpipe.flowspec.context import EvalContext
from sflowpipe.flowspec.definition import AGG_MODES, VALUES, CompiledFlow, FlowDef, compile_flow, parse_definition
from sflowpipe.flowspec.errors import FlowSpecError
from sflowpipe.flowspec.filters import Filter, compile_filter
from sflowpipe.flowspec.functions import FUNCTION_NAMES, compile_key
from sflowpipe.flowspec.keys import DROP_KEYS, KEY_NAMES, NOT_FROM_SFLOW, not_from_sflow

__all__ = [
    "FlowSpecError",
    "FlowDef",
    "CompiledFlow",
    "Filter",
    "EvalContext",
    "parse_definition",
    "compile_flow",
    "compile_filter",
    "compile_key",
    "KEY_NAMES",
    "FUNCTION_NAMES",
    "VALUES",
    "AGG_MODES",
    "DROP_KEYS",
    "NOT_FROM_SFLOW",
    "not_from_sflow",
]

"""Scrape a component's /metrics over HTTP and parse it with prometheus-client's own parser."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families


class Scraped(dict):
    """{(sample name, frozenset of (label, value))): value}, with sums over label sets."""

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples named ``name`` whose labels include ``labels`` (0 if none)."""
        want = set(labels.items())
        return sum(v for (n, ls), v in self.items() if n == name and want <= ls)

    def has(self, name: str) -> bool:
        return any(n == name for n, _ in self)

    def families(self) -> set[str]:
        return {n for n, _ in self}


def scrape(url: str, timeout: float = 5) -> Scraped:
    text = urllib.request.urlopen(url, timeout=timeout).read().decode()
    out = Scraped()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out

"""Which settings are secrets: masked by ``--print-config``, kept out of the files ``up`` writes.

A secret is a ``SecretStr`` value, a value whose key names one (``*password*``, ``*token*``,
``*secret*``, ``ssl.key*``, ``Authorization``...: this covers the librdkafka extras such as
``sasl.password`` and HTTP headers), or the password in a URL's user part or a secret-named
query parameter (a ClickHouse DSN ``http://user:pw@host``, a registry URL).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sflowpipe.typed import SecretStr

MASK = "***"
SECRET_KEY = re.compile(r"pass(word|wd|phrase)|secret|token|credential|authorization|api[-_.]?key|"
                        r"private[-_.]?key|ssl[-_.]key|jaas|user[-_.]info", re.IGNORECASE)


def _masked_url(text: str) -> str | None:
    """The URL with its password and secret query values masked, or None if it holds none."""
    try:
        url = urlsplit(text)
        password = url.password
    except ValueError:
        return None
    if not url.scheme or not url.netloc:
        return None
    netloc = url.netloc
    if password:
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:{MASK}@{hostport}"
    query = parse_qsl(url.query, keep_blank_values=True)
    hidden = [(k, MASK if SECRET_KEY.search(k) and v else v) for k, v in query]
    if netloc == url.netloc and hidden == query:
        return None
    return urlunsplit(url._replace(netloc=netloc, query=urlencode(hidden, safe="*")))


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def _masked(key: str, value: Any) -> Any:
    """The masked form of a leaf, or the value itself if it is no secret."""
    if isinstance(value, SecretStr):
        return MASK if value.get_secret_value() else ""
    if SECRET_KEY.search(key) and _is_scalar(value) and value != "":
        return MASK
    if isinstance(value, str):
        url = _masked_url(value)
        if url is not None:
            return url
    return value


def mask(data: Any, key: str = "") -> Any:
    """``data`` (settings dumped in python mode, or raw YAML) with every secret shown as ``***``
    (the items of a list are judged by themselves, not by the list's key)."""
    if isinstance(data, dict):
        return {k: mask(v, str(k)) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [mask(v) for v in data]
    return _masked(key, data)


def split(data: dict) -> tuple[dict, dict]:
    """``data`` without its secrets, and the secrets alone under the same keys. A list holding a
    secret goes whole (a list cannot be merged back item by item)."""
    public: dict = {}
    secrets: dict = {}
    for k, v in data.items():
        if isinstance(v, dict):
            pub, sec = split(v)
            public[k] = pub
            if sec:
                secrets[k] = sec
        elif mask(v, str(k)) != v:
            secrets[k] = v.get_secret_value() if isinstance(v, SecretStr) else v
        else:
            public[k] = v
    return public, secrets

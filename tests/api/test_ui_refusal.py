"""The flow browser's refusal display (api/static/app.js ``sp.put`` + ``sp.fieldError``), run by node
against the API over real HTTP: a flow definition the workers cannot compute is refused with a
400, and its message, with a caret under the position, lands next to the input that holds the
fault, the offending token selected. (The page itself is driven in a real browser by
tests/test_up.py where chromium is installed.)"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from tests.api.test_server import _client, _settings

pytestmark = pytest.mark.e2e  # runs the UI script in node

APP_JS = Path(__file__).resolve().parents[2] / "api" / "static" / "app.js"

# The smallest DOM the two functions touch: elements by id, attributes, focus and selection.
SCRIPT = r"""
const [appJs, base, body] = process.argv.slice(1);  // node -e: no script path in argv
const els = {};
function el(id, value) {
  return els[id] = { id, value, textContent: "", attrs: {}, focused: false, selection: null,
    setAttribute(k, v) { this.attrs[k] = v; }, removeAttribute(k) { delete this.attrs[k]; },
    focus() { this.focused = true; }, setSelectionRange(a, b) { this.selection = [a, b]; } };
}
global.document = { getElementById: id => els[id] || null };
const sp = require(appJs);
const def = JSON.parse(body);
const inputs = { keys: el("keys", def.keys), value: el("value", def.value || "bytes"), filter: el("filter", def.filter || "") };
for (const id of ["keys-error", "value-error", "filter-error"]) el(id, "");
els["filter-error"].textContent = "an earlier refusal";
(async () => {
  try {
    await sp.put(base + "/flow/browse_x/json", def);
    console.log(JSON.stringify({ accepted: true }));
  } catch (e) {
    const shown = sp.fieldError(e.detail, inputs);
    console.log(JSON.stringify({ shown, message: e.message, detail: e.detail,
      errors: Object.fromEntries(["keys", "value", "filter"].map(k => [k, els[k + "-error"].textContent])),
      invalid: Object.fromEntries(["keys", "value", "filter"].map(k => [k, inputs[k].attrs["aria-invalid"] || null])),
      selection: Object.fromEntries(["keys", "value", "filter"].map(k => [k, inputs[k].selection])) }));
  }
})();
"""


async def _run_node(base: str, body: dict) -> dict:
    proc = await asyncio.create_subprocess_exec(shutil.which("node") or "node", "-e", SCRIPT, str(APP_JS), base,
                                                json.dumps(body), stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return json.loads(out.decode().strip().splitlines()[-1])


@pytest.mark.asyncio
@pytest.mark.parametrize("body, field, token, position", [
    ({"keys": "ipsource,nosuchkey", "value": "bytes"}, "keys", "nosuchkey", 9),
    ({"keys": "ipsource", "value": "bytes", "filter": "ipprotocol=6&nosuch=1"}, "filter", "nosuch", 13),
])
async def test_refusal_is_shown_next_to_the_input_with_a_caret(body, field, token, position):
    client, _, rec = await _client(_settings())
    try:
        base = str(client.make_url("")).rstrip("/")
        got = await _run_node(base, body)
        assert got["shown"] is True and rec.calls == []
        assert got["detail"]["field"] == field and got["detail"]["position"] == position
        text = got["errors"][field]
        message, typed, caret = text.split("\n")
        assert message == got["detail"]["error"] and token in message
        assert typed == body[field] and caret == " " * position + "^"
        assert got["invalid"][field] == "true" and got["selection"][field] == [position, position + len(token)]
        others = [k for k in ("keys", "value", "filter") if k != field]
        assert all(got["errors"][k] == "" and got["invalid"][k] is None for k in others)  # earlier ones cleared
        accepted = await _run_node(base, {"keys": "ipsource", "value": "bytes"})
        assert accepted == {"accepted": True} and rec.calls[-1][0] == "flow"
    finally:
        await client.close()

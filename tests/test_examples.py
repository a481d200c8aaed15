"""The shipped example definitions and compose file stay valid."""

from pathlib import Path

import yaml

from processors.config import parse
from processors.flowspec import compile_flow, parse_definition
from sflowpipe.cli import build_parser
from sflowpipe.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_example_definitions_parse_and_compile():
    data = yaml.safe_load((ROOT / "sflowpipe" / "flows.yaml").read_text())
    for name, body in data["flows"].items():
        parse("flow", name, body)
        compile_flow(parse_definition(name, body))
    for name, body in data["thresholds"].items():
        assert parse("threshold", name, body).metric in data["flows"]
    for name, body in data["groups"].items():
        parse("group", name, body)


def test_compose_commands_and_settings_are_real():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    parser = build_parser()
    fields = Settings.model_fields
    for name, svc in compose["services"].items():
        if "build" not in svc:
            continue
        parser.parse_args(svc["command"])  # a real sflowpipe subcommand with real options
        for var in svc.get("environment", {}):
            section, _, key = var.removeprefix("SFLOWPIPE_").lower().partition("__")
            assert section in fields, var
            if key:
                assert key in fields[section].annotation.model_fields, var

"""The one typed settings object, built once at the entry point and passed down.

Sources, later ones winning: defaults, a YAML file (``--config``), environment variables
``SFLOWPIPE_<SECTION>__<NAME>`` (e.g. ``SFLOWPIPE_DECODE__PORT=6343``), then command-line flags.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DecodeSettings(BaseModel):
    """`sflowpipe decode`: the sflowtool drop-in."""

    port: int = Field(6343, ge=1, le=65535, description="UDP port to listen on when no -r file is given")
    listen_address: str = Field("::", description="address to bind (:: takes IPv4 and IPv6)")


class Settings(BaseSettings):
    """Everything sflowpipe can be configured with."""

    model_config = SettingsConfigDict(env_prefix="SFLOWPIPE_", env_nested_delimiter="__", extra="forbid")

    log_level: str = Field("INFO", description="logging level")
    decode: DecodeSettings = DecodeSettings()

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        # the environment overrides the YAML file (passed in as init values)
        return (env_settings, init_settings)


def load_settings(config_file: str | None = None, **overrides: Any) -> Settings:
    """Build the settings: YAML file (if any) under environment variables under explicit overrides."""
    data: dict[str, Any] = {}
    if config_file:
        loaded = yaml.safe_load(Path(config_file).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{config_file}: expected a mapping of settings")
        data.update(loaded)
    settings = Settings(**data)
    sections: dict[str, dict[str, Any]] = {}
    for dotted, value in overrides.items():
        section, _, name = dotted.partition(".")
        sections.setdefault(section, {})[name] = value
    update = {}
    for section, values in sections.items():
        current = getattr(settings, section)
        update[section] = type(current).model_validate({**current.model_dump(), **values})
    return settings.model_copy(update=update) if update else settings

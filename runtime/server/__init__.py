"""The daemon: ``tiercel server``'s HTTP API (Kestra's paths), live events, schedules and
triggers, around one embedded runtime."""

from runtime.server.config import ConfigError, ServerConfig, load_config
from runtime.server.daemon import Daemon, ServerStartError, serve

__all__ = ("ConfigError", "Daemon", "ServerConfig", "ServerStartError", "load_config", "serve")

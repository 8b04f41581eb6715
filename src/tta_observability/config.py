"""Settings for ``setup()``: the public names of :mod:`tta_observability._settings`."""

from __future__ import annotations

from ._settings import (
    DEFAULT_ENVIRONMENT,
    DEFAULT_METRICS_PORT,
    DEFAULT_SERVICE_NAME,
    MULTIPROCESS_DIR_ENV,
    SD_DIR_ENV,
    ConfigError,
    Settings,
    resolve,
    resource_attributes,
)

__all__ = [
    "DEFAULT_ENVIRONMENT",
    "DEFAULT_METRICS_PORT",
    "DEFAULT_SERVICE_NAME",
    "MULTIPROCESS_DIR_ENV",
    "SD_DIR_ENV",
    "ConfigError",
    "Settings",
    "resolve",
    "resource_attributes",
]

"""The context of a public-pages process (``siyu serve-public``): the state database only.

The DuckDB warehouse belongs to the main process (``siyu serve``; one writer per file). A public-pages process
serves the mobile pages (/m/...) from the state database and its caches; the first time a request needs the
warehouse (OneID asked about someone the caches do not know, a sign-in, a join that records an identity),
``WarehouseElsewhere`` is raised before anything is written and the request is handed to the main process
whole (``siyu.api.public_app``).
"""

from __future__ import annotations

from typing import NoReturn

from siyu.config import Settings
from siyu.services.context import Context


class WarehouseElsewhere(Exception):
    """The request needs the warehouse, which only the main process opens."""


class MainProcessWarehouse:
    """Stands in for the warehouse in a public-pages process: any use raises ``WarehouseElsewhere``."""

    def __getattr__(self, name: str) -> NoReturn:
        raise WarehouseElsewhere(name)

    def close(self) -> None:
        """Nothing to close."""


def open_public_context(settings: Settings) -> Context:
    """A Context over the state DB only (the main process migrates it); never loads the ingest log."""
    return Context.state_only(settings, MainProcessWarehouse())

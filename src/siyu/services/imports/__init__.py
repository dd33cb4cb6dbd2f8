"""File imports (customers, orders, guides, stores, channels, channel spend, WeCom contacts, UCI online retail).

The console, API and CLI use only these names.
"""

from siyu.services.imports.kinds import KINDS, kind_spec
from siyu.services.imports.mapping import guess_mapping, resolve_mapping
from siyu.services.imports.runner import (
    ImportJobView,
    execute_job,
    get_job,
    list_jobs,
    preview,
    run_import,
    submit_import,
)

__all__ = [
    "KINDS",
    "ImportJobView",
    "execute_job",
    "get_job",
    "guess_mapping",
    "kind_spec",
    "list_jobs",
    "preview",
    "resolve_mapping",
    "run_import",
    "submit_import",
]

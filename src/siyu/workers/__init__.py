"""Background jobs on Huey: the queue, the in-process consumer and the context registry.

``get_huey(settings)`` returns a SqliteHuey at ``<data_dir>/huey.sqlite`` (or a RedisHuey when
``SIYU_REDIS_URL=redis://...``).  DuckDB allows one writing process, so by default the consumer runs as threads
inside the API process (``start_consumer``, called from the FastAPI lifespan).  Tasks find their Context in a
process registry (``register_context``) keyed by the data directory.
"""

from siyu.workers.queue import (
    EmbeddedConsumer,
    context_for,
    get_huey,
    lifespan,
    register_context,
    start_consumer,
    unregister_context,
)
from siyu.workers.tasks import enqueue_call, enqueue_import

__all__ = [
    "EmbeddedConsumer",
    "context_for",
    "enqueue_call",
    "enqueue_import",
    "get_huey",
    "lifespan",
    "register_context",
    "start_consumer",
    "unregister_context",
]

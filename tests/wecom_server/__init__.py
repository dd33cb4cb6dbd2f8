"""A local WeCom server for tests and the demo: the documented /cgi-bin API, in memory, plus callbacks.

``WeComServer`` (configure, seed, inject failures), ``running(server)`` (serve on 127.0.0.1), ``actions`` (what
people do in the apps, each emitting the callback WeCom sends to ``server.connect_callbacks(url, ...)``).
"""

from tests.wecom_server import actions
from tests.wecom_server.callbacks import Emitter
from tests.wecom_server.server import WeComServer, running
from tests.wecom_server.state import seed

__all__ = ["Emitter", "WeComServer", "actions", "running", "seed"]

"""siyu.connectors."""

from siyu.connectors import redact

redact.install()  # HTTP client loggers print URLs; WeCom puts corpsecret / access_token in them

"""A local Alibaba Cloud SMS (dysmsapi SendSms) server for tests: signature checked as the vendor documents."""

from tests.sms_server.server import SmsState, answer, server_signature, sms_server

__all__ = ["SmsState", "answer", "server_signature", "sms_server"]

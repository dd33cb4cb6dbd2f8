"""SMS providers behind one protocol (``base.SmsProvider``); Alibaba Cloud SMS (dysmsapi SendSms) is built in."""

from siyu.connectors.sms.aliyun import AliyunSms, percent_encode, sign, string_to_sign
from siyu.connectors.sms.base import SmsProvider, SmsResult

__all__ = ["AliyunSms", "SmsProvider", "SmsResult", "percent_encode", "sign", "string_to_sign"]

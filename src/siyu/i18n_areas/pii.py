"""Texts of personal-data masking in the console: the reveal button of the customer 360 and its notes."""

from __future__ import annotations

ZH: dict[str, str] = {
    "pii.reveal": "查看完整信息",
    "pii.revealed": "已显示完整信息（已记入审计日志）",
    "pii.masked_note": "手机号、邮箱、姓名和企微 ID 已脱敏",
    "pii.masked": "已脱敏",
}
EN: dict[str, str] = {
    "pii.reveal": "Reveal personal data",
    "pii.revealed": "Personal data shown (recorded in the audit log)",
    "pii.masked_note": "Phones, emails, names and WeCom ids are masked",
    "pii.masked": "masked",
}

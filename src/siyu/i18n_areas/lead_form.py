"""Texts of the public lead form (/m/{brand}/form/{form_id}) and the WeCom settings page of the console."""

ZH: dict[str, str] = {
    "lead_form.intro": "留下您的联系方式，专属导购会尽快与您联系",
    "lead_form.name": "姓名",
    "lead_form.phone": "手机号",
    "lead_form.consent": "我同意品牌通过电话、短信或企业微信联系我",
    "lead_form.submit": "提交",
    "lead_form.thanks": "提交成功，导购会尽快联系您",
    "wecom_settings.title": "企业微信设置",
    "wecom_settings.intro": "企业微信连接信息与可信域名校验文件（上传后企业微信即可在本域名根目录读取）",
    "wecom_settings.corp": "企业 ID",
    "wecom_settings.not_configured": "尚未配置企业微信（siyu wecom configure）",
    "wecom_settings.verify": "可信域名校验文件",
    "wecom_settings.verify_none": "尚未上传校验文件",
    "wecom_settings.verify_current": "当前文件：{name}（{bytes} 字节，{at} 由 {by} 上传），地址 {path}",
    "wecom_settings.upload": "上传 WW_verify_….txt",
    "wecom_settings.uploaded": "已上传 {name}",
    "wecom_settings.clear": "删除校验文件",
    "wecom_settings.cleared": "已删除校验文件",
    "wecom_settings.admins_only": "仅管理员可上传或删除校验文件",
}

EN: dict[str, str] = {
    "lead_form.intro": "Leave your details and a shopping guide will contact you soon",
    "lead_form.name": "Name",
    "lead_form.phone": "Mobile number",
    "lead_form.consent": "I agree that the brand may contact me by phone, SMS or WeCom",
    "lead_form.submit": "Submit",
    "lead_form.thanks": "Thank you — a shopping guide will contact you soon",
    "wecom_settings.title": "WeCom settings",
    "wecom_settings.intro": "The WeCom connection and the trusted-domain verification file (served at this "
    "domain's root once uploaded)",
    "wecom_settings.corp": "Corp ID",
    "wecom_settings.not_configured": "WeCom is not configured yet (siyu wecom configure)",
    "wecom_settings.verify": "Trusted-domain verification file",
    "wecom_settings.verify_none": "No verification file uploaded yet",
    "wecom_settings.verify_current": "Current file: {name} ({bytes} bytes, uploaded {at} by {by}), at {path}",
    "wecom_settings.upload": "Upload WW_verify_….txt",
    "wecom_settings.uploaded": "Uploaded {name}",
    "wecom_settings.clear": "Delete the verification file",
    "wecom_settings.cleared": "Verification file deleted",
    "wecom_settings.admins_only": "Only admins may upload or delete the verification file",
}

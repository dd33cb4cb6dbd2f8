"""Every API the local server answers, by name (the path after ``/cgi-bin/externalcontact/``)."""

from __future__ import annotations

from tests.wecom_server import routes_behavior as bh
from tests.wecom_server import routes_contacts as c
from tests.wecom_server import routes_groupmsg as gm
from tests.wecom_server import routes_groups as g
from tests.wecom_server import routes_join_ways as jw
from tests.wecom_server import routes_jssdk as js
from tests.wecom_server import routes_media as md
from tests.wecom_server import routes_messages as m
from tests.wecom_server import routes_moments as mo
from tests.wecom_server import routes_tags as t
from tests.wecom_server import routes_transfer as x
from tests.wecom_server import routes_ways as w

ROUTES = {
    "get_follow_user_list": c.follow_user_list,
    "list": c.user_list,
    "get": c.get,
    "batch/get_by_user": c.batch_get_by_user,
    "mark_tag": c.mark_tag,
    "add_contact_way": w.add_contact_way,
    "get_contact_way": w.get_contact_way,
    "update_contact_way": w.update_contact_way,
    "del_contact_way": w.del_contact_way,
    "list_contact_way": w.list_contact_way,
    "groupchat/add_join_way": w.add_join_way,
    "groupchat/get_join_way": jw.get_join_way,
    "get_corp_tag_list": t.get_corp_tag_list,
    "add_corp_tag": t.add_corp_tag,
    "edit_corp_tag": t.edit_corp_tag,
    "del_corp_tag": t.del_corp_tag,
    "groupchat/list": g.groupchat_list,
    "groupchat/get": g.groupchat_get,
    "send_welcome_msg": m.send_welcome_msg,
    "add_msg_template": m.add_msg_template,
    "get_groupmsg_task": gm.get_groupmsg_task,
    "get_groupmsg_send_result": gm.get_groupmsg_send_result,
    "transfer_customer": x.transfer_customer,
    "resigned/transfer_customer": x.resigned_transfer_customer,
    "transfer_result": x.transfer_result,
    "add_moment_task": mo.add_moment_task,
    "get_moment_task_result": mo.get_moment_task_result,
    "get_moment_list": mo.get_moment_list,
    "get_moment_task": mo.get_moment_task,
    "get_user_behavior_data": bh.get_user_behavior_data,  # 联系客户统计
    "get_jsapi_ticket": js.get_jsapi_ticket,  # /cgi-bin/get_jsapi_ticket (not under externalcontact/)
    "ticket/get": js.ticket_get,  # /cgi-bin/ticket/get?type=agent_config
    "auth/getuserinfo": js.getuserinfo,  # /cgi-bin/auth/getuserinfo?code=
    "media/upload": md.upload,  # /cgi-bin/media/upload?type= (multipart)
}

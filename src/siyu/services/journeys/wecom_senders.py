"""Journey sends through WeCom: a 1:1 message via the customer's guide, a group message to the groups the
customer is in, and a place in the step's daily mass-send batch.

All three record through ``siyu.services.wecom.mass_send`` (``add_msg_template`` tasks, one row per recipient), so
the brand's one daily marketing cap (``siyu.domain.contact_cap``, shared with SMS / email / mass sends) decides who
may be messaged, and a capped customer is reported, not sent. The step's idempotency key is the send's
idempotency key (1:1 and group), or the customer is a unique recipient of the step's batch (mass): a worker
killed anywhere re-runs the step into the recorded send, whose task is claimed (pending → sending) before WeCom is
called and never called again once claimed — a send whose answer was lost stays ``unknown`` for a person to check.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from siyu.errors import SiyuError
from siyu.services.context import Context
from siyu.services.journeys.channel_senders import journey_user
from siyu.services.journeys.senders import OutboundMessage, SendResult
from siyu.services.messaging import marketing_cap
from siyu.services.wecom import audience, mass_send
from siyu.services.wecom.config import client_for, get_config
from siyu.stores.state.journey_models import JourneyEffectRow
from siyu.stores.state.models import utcnow
from siyu.stores.state.wecom_ops_models import WeComMassRecipientRow, WeComMassSendRow, WeComMassTaskRow

BATCH_PREFIX = "jmass:"
CAPPED = "capped: the customer already got today's marketing message(s) (the brand's daily cap)"
CHANNELS: tuple[str, ...] = ("wecom_1to1", "wecom_group", "wecom_mass")
OPEN = ("pending", "sending")  # effect statuses still on their way


def _ready(ctx: Context, m: OutboundMessage) -> str | None:
    """Why the message cannot be sent through WeCom, or None."""
    try:
        client_for(get_config(ctx, m.brand_id))
        mass_send.check_content(m.content, [])
    except SiyuError as err:
        return f"{err.field}: {err.message}" if err.field else err.message
    return None


def _step_name(m: OutboundMessage) -> str:
    return f"journey:{m.journey_id}:{m.node_id}"[:100]


def _outcome(ctx: Context, send_id: str) -> SendResult:
    """The journey result of a recorded WeCom send (after ``dispatch``)."""
    with ctx.sessions() as s:
        recipients = dict(
            s.execute(
                select(WeComMassRecipientRow.target, WeComMassRecipientRow.status).where(
                    WeComMassRecipientRow.send_id == send_id
                )
            ).all()
        )
        tasks = list(
            s.execute(
                select(WeComMassTaskRow.status, WeComMassTaskRow.msgid, WeComMassTaskRow.error).where(
                    WeComMassTaskRow.send_id == send_id
                )
            )
        )
    if recipients and all(v == "capped" for v in recipients.values()):
        return SendResult(False, CAPPED, final=True)
    if recipients and all(v == "failed" for v in recipients.values()):
        return SendResult(False, "WeCom refused the recipient (fail_list: no longer the guide's contact)")
    for status, _msgid, error in tasks:
        if status != "created":
            return SendResult(False, f"WeCom task {status}: {error or 'not created yet'}")
    return SendResult(True, provider_id=",".join(t[1] for t in tasks) or send_id)


class WeComOneToOne:
    """``wecom_1to1``: one ``add_msg_template`` (chat_type single) from the customer's guide to the customer."""

    channel = "wecom_1to1"

    def send(self, ctx: Context, m: OutboundMessage) -> SendResult:
        send_id = mass_send.existing(ctx, m.brand_id, m.key)
        if send_id is None:
            problem = _ready(ctx, m)
            if problem:
                return SendResult(False, problem)
            reach = mass_send.latest_relation(audience.relations(ctx, m.brand_id, customer_id=m.customer_id))
            if m.customer_id not in reach:
                return SendResult(False, "the customer has no active WeCom contact with a guide")
            send_id = mass_send.record(
                ctx,
                m.brand_id,
                key=m.key,
                name=_step_name(m),
                chat_type="single",
                content=m.content,
                attachments=[],
                created_by="journey",
                single=[reach[m.customer_id]],
            )
        return _dispatched(ctx, m, send_id)


def _dispatched(ctx: Context, m: OutboundMessage, send_id: str) -> SendResult:
    try:
        mass_send.dispatch(ctx, journey_user(m.brand_id), send_id)  # only tasks never claimed: never twice
    except SiyuError as err:
        return SendResult(False, err.message)
    return _outcome(ctx, send_id)


class WeComGroup:
    """``wecom_group``: a group message (chat_type group) to the customer groups the customer is in, from the
    guides who own them; a group gets the step's message once a day however many of its members reach it."""

    channel = "wecom_group"

    def send(self, ctx: Context, m: OutboundMessage) -> SendResult:
        send_id = mass_send.existing(ctx, m.brand_id, m.key)
        if send_id is None:
            problem = _ready(ctx, m)
            if problem:
                return SendResult(False, problem)
            chats = audience.customer_groups(ctx, m.brand_id, m.customer_id)
            if not chats:
                return SendResult(False, "the customer is in no customer group of a guide")
            day = marketing_cap(ctx, m.brand_id).day(utcnow()).isoformat()
            with ctx.sessions() as s:
                done = set(
                    s.scalars(
                        select(WeComMassRecipientRow.target)
                        .join(WeComMassSendRow, WeComMassSendRow.id == WeComMassRecipientRow.send_id)
                        .where(
                            WeComMassSendRow.brand_id == m.brand_id,
                            WeComMassSendRow.name == _step_name(m),
                            WeComMassSendRow.cap_day == day,
                            WeComMassRecipientRow.target.in_([c for c, _, _ in chats]),
                        )
                    )
                )
            fresh = [c for c in chats if c[0] not in done]
            if not fresh:
                return SendResult(True, "the customer's groups already got this step's message today")
            send_id = mass_send.record(
                ctx,
                m.brand_id,
                key=m.key,
                name=_step_name(m),
                chat_type="group",
                content=m.content,
                attachments=[],
                created_by="journey",
                groups=fresh,
            )
        return _dispatched(ctx, m, send_id)


class WeComMassBatch:
    """``wecom_mass``: the customer joins the step's mass send of the day (one per journey node and local day);
    ``flush`` makes one task per guide of everyone who joined once no send of that step is pending, and
    dispatches it."""

    channel = "wecom_mass"

    def send(self, ctx: Context, m: OutboundMessage) -> SendResult:
        problem = _ready(ctx, m)
        if problem:
            return SendResult(False, problem)
        reach = mass_send.latest_relation(audience.relations(ctx, m.brand_id, customer_id=m.customer_id))
        if m.customer_id not in reach:
            return SendResult(False, "the customer has no active WeCom contact with a guide")
        day = marketing_cap(ctx, m.brand_id).day(utcnow()).isoformat()
        key = f"{BATCH_PREFIX}{m.journey_id}:{m.node_id}:{day}"
        status = mass_send.join_batch(
            ctx,
            m.brand_id,
            key=key,
            name=_step_name(m),
            content=m.content,
            reach=reach[m.customer_id],
            created_by="journey",
        )
        if status == "capped":
            return SendResult(False, CAPPED, final=True)
        return SendResult(True, provider_id=key)

    def flush(self, ctx: Context) -> int:
        """Seal and dispatch the batches whose step has no pending send left; returns the tasks dispatched."""
        since = utcnow() - timedelta(days=2)
        with ctx.sessions() as s:
            sends = list(
                s.execute(
                    select(WeComMassSendRow.id, WeComMassSendRow.brand_id, WeComMassSendRow.idempotency_key).where(
                        WeComMassSendRow.idempotency_key.startswith(BATCH_PREFIX),
                        WeComMassSendRow.created_at >= since,
                    )
                )
            )
            pending = {
                f"{BATCH_PREFIX}{j}:{n}:"
                for j, n in s.execute(
                    select(JourneyEffectRow.journey_id, JourneyEffectRow.node_id)
                    .where(JourneyEffectRow.status.in_(OPEN), JourneyEffectRow.channel == self.channel)
                    .distinct()
                )
            }
        made = 0
        for send_id, brand, key in sends:
            if any(key.startswith(p) for p in pending):
                continue  # more customers are on their way to this step: one task per guide for all of them
            mass_send.seal_batch(ctx, brand, key)
            try:
                made += sum(mass_send.dispatch(ctx, journey_user(brand), send_id).values())
            except SiyuError:
                continue  # WeCom not configured any more: the tasks stay pending
        return made


WECOM_SENDERS: dict[str, WeComOneToOne | WeComGroup | WeComMassBatch] = {
    "wecom_1to1": WeComOneToOne(),
    "wecom_group": WeComGroup(),
    "wecom_mass": WeComMassBatch(),
}

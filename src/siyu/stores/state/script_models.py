"""State tables of the scripts library (话术库 / 素材库): folders, items (text, image, link, mini-program card,
file) with their usage counts, one row per use (who sent what to whom, from the sidebar) and one per send the
sidebar prepared (confirmed by WeCom's callback or not). Schema: Alembic 0014_scripts, 0016_script_sends."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.stores.state.models import Base, utcnow


class ScriptFolderRow(Base):
    """A folder of scripts (one level of nesting through ``parent_id``)."""

    __tablename__ = "script_folders"
    __table_args__ = (UniqueConstraint("brand_id", "parent_id", "name", name="uq_script_folders_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    brand_id: Mapped[str] = mapped_column(ForeignKey("brands.id"), index=True)
    parent_id: Mapped[int] = mapped_column(Integer, default=0)  # 0 = top level
    name: Mapped[str] = mapped_column(String(60))
    sort: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ScriptRow(Base):
    """One item: ``kind`` text | image | link | miniprogram | file; ``body`` is the text (or the description);
    ``payload`` the kind's fields (url, image_url, appid, page, media_id, file_name ...); an image or file item
    may carry an uploaded file (``file_key``), sent through WeCom temporary media cached in ``media_id``."""

    __tablename__ = "scripts"
    __table_args__ = (Index("ix_scripts_brand_folder", "brand_id", "folder_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    brand_id: Mapped[str] = mapped_column(ForeignKey("brands.id"))
    folder_id: Mapped[int] = mapped_column(Integer, default=0)  # 0 = no folder
    kind: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    keywords: Mapped[str] = mapped_column(String(200), default="")
    file_key: Mapped[str] = mapped_column(String(120), default="")  # uploaded file under <data>/scripts/
    media_id: Mapped[str] = mapped_column(String(200), default="")  # its WeCom temporary media (3 days)
    media_expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    use_count: Mapped[int] = mapped_column(Integer, default=0)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | deleted
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ScriptUseRow(Base):
    """One use of an item: sent (or copied) by a guide to a customer."""

    __tablename__ = "script_uses"
    __table_args__ = (Index("ix_script_uses_script", "script_id", "used_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    brand_id: Mapped[str] = mapped_column(String(64))
    script_id: Mapped[int] = mapped_column(ForeignKey("scripts.id"))
    guide_id: Mapped[str] = mapped_column(String(64), default="")
    customer_id: Mapped[str] = mapped_column(String(128), default="")
    chat_id: Mapped[str] = mapped_column(String(128), default="", server_default="")  # sent into a group chat
    channel: Mapped[str] = mapped_column(String(16), default="sidebar")  # sidebar | copy | api
    used_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ScriptSendRow(Base):
    """One send prepared by the sidebar: the one-time ``token_hash`` the page confirms with once WeCom's
    ``sendChatMessage`` callback answers. ``status`` prepared | sent | cancelled | failed; a prepared send past
    ``expires_at`` can no longer be confirmed (expired). Only a confirmed send counts a use."""

    __tablename__ = "script_sends"
    __table_args__ = (
        UniqueConstraint("token_hash", name="uq_script_sends_token"),
        Index("ix_script_sends_script", "script_id", "status"),
        Index("ix_script_sends_brand_prepared", "brand_id", "prepared_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    brand_id: Mapped[str] = mapped_column(String(64))
    script_id: Mapped[int] = mapped_column(ForeignKey("scripts.id"))
    guide_id: Mapped[str] = mapped_column(String(64), default="")
    customer_id: Mapped[str] = mapped_column(String(128), default="")
    chat_id: Mapped[str] = mapped_column(String(128), default="")  # a customer group (the sidebar in a group chat)
    channel: Mapped[str] = mapped_column(String(16), default="sidebar")  # sidebar | copy
    token_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the token given to the page
    status: Mapped[str] = mapped_column(String(16), default="prepared")
    result: Mapped[str] = mapped_column(String(64), default="")  # the err_msg the page reported
    prepared_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

"""Who is logged in to the console and in which language (per-browser ``app.storage.user``)."""

from __future__ import annotations

from fastapi.responses import RedirectResponse
from nicegui import app

from siyu.i18n import normalize_language
from siyu.i18n import t as translate
from siyu.services import auth as auth_service
from siyu.services.brands import User, get_user
from siyu.services.context import Context
from siyu.services.errors import NotFound

MOUNT_PATH = "/console"
_state: dict[str, Context] = {}


def set_context(ctx: Context) -> None:
    """Remember the Context the console pages use (the last mounted app's)."""
    _state["ctx"] = ctx


def context() -> Context:
    """The Context of the console."""
    return _state["ctx"]


def url(path: str) -> str:
    """Absolute URL of a console page for server-side redirects (``ui.link``/``ui.navigate`` add the prefix)."""
    return MOUNT_PATH + path


def current_user() -> User | None:
    """The logged-in user of this browser, or None."""
    user_id = app.storage.user.get("user_id")
    if not isinstance(user_id, int):
        return None
    try:
        return get_user(context(), user_id)
    except NotFound:
        app.storage.user.clear()
        return None


def login_redirect() -> RedirectResponse:
    return RedirectResponse(url("/login"))


def lang() -> str:
    """The browser's console language ('zh' by default)."""
    return normalize_language(app.storage.user.get("lang"))


def tr(key: str, **values: object) -> str:
    """Translate ``key`` into the session language."""
    return translate(key, lang(), **values)


def sign_in(user: User) -> None:
    app.storage.user.update({"user_id": user.id, "lang": normalize_language(user.language)})


def sign_out() -> None:
    app.storage.user.clear()


def switch_language(user: User) -> None:
    """Toggle zh/en for this browser and remember it on the user (users.language)."""
    new = "en" if lang() == "zh" else "zh"
    app.storage.user["lang"] = new
    auth_service.set_language(context(), user.id, new)

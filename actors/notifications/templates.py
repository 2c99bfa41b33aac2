"""Every text the notifications actor sends, in one place: subject, plain text and HTML.

Pure functions, no IO. Links are built from the public URL of the web edge; user-supplied
values (names, addresses) are escaped in HTML and flattened to one line everywhere, so a
name can neither inject markup nor forge lines. The links carry single-use tokens: render
them into mails, never into logs.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from actors.auth.messages import (
    EmailVerificationRequested,
    PasswordChanged,
    PasswordResetRequested,
)
from actors.notifications.channels.email import Mail

PRODUCT = "splitgo"
VERIFY_PATH = "/verify-email"
RESET_PATH = "/reset-password"

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


# ── links ──────────────────────────────────────────────────────────────────────────────


def _base(public_url: str) -> str:
    return public_url.strip().rstrip("/")


def _with_token(public_url: str, path: str, token: str) -> str:
    # quoted whole: a token with '+', '/' or '=' must reach the page unchanged
    return f"{_base(public_url)}{path}?token={quote(token, safe='')}"


def verification_link(public_url: str, token: str) -> str:
    """`{public_url}/verify-email?token=<token>`: the page that confirms the address."""
    return _with_token(public_url, VERIFY_PATH, token)


def reset_link(public_url: str, token: str) -> str:
    """`{public_url}/reset-password?token=<token>`: the page that sets a new password."""
    return _with_token(public_url, RESET_PATH, token)


# ── helpers ────────────────────────────────────────────────────────────────────────────


def display_name(name: str | None) -> str:
    """A name fit for a greeting: control characters and line breaks become spaces."""
    return " ".join(_CONTROL.sub(" ", name or "").split())


def _greeting(name: str | None) -> str:
    shown = display_name(name)
    return f"Hi {shown}," if shown else "Hello,"


def _text(*paragraphs: str) -> str:
    return "\n\n".join([*paragraphs, f"— {PRODUCT}"]) + "\n"


def _html(
    title: str,
    before: list[str],
    button: tuple[str, str] | None = None,
    after: tuple[str, ...] = (),
) -> str:
    """A small, mail-client-safe page (inline styles, one table): the paragraphs `before`,
    a button with a copyable link, the paragraphs `after`. Paragraphs are escaped HTML
    already; `button` is (label, url), both raw: escaped here."""
    parts = [f'<p style="margin:0 0 16px">{p}</p>' for p in before]
    if button is not None:
        label, url = button
        href = html.escape(url, quote=True)
        parts.append(
            '<p style="margin:24px 0">'
            f'<a href="{href}" style="background:#0f766e;color:#ffffff;padding:12px 20px;'
            'border-radius:6px;text-decoration:none;display:inline-block">'
            f"{html.escape(label)}</a></p>"
            '<p style="margin:0 0 16px;font-size:13px;color:#555555">'
            "If the button does not work, copy this link into your browser:<br>"
            f'<a href="{href}" style="color:#0f766e;word-break:break-all">{html.escape(url)}</a>'
            "</p>"
        )
    parts += [f'<p style="margin:0 0 16px">{p}</p>' for p in after]
    body = "\n".join(parts)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width">'
        f"<title>{html.escape(title)}</title></head>\n"
        '<body style="margin:0;padding:24px;background:#f4f4f5;'
        'font-family:Helvetica,Arial,sans-serif;font-size:15px;line-height:1.5;color:#18181b">\n'
        '<table role="presentation" width="100%" style="max-width:560px;margin:0 auto;'
        'background:#ffffff;border-radius:8px"><tr><td style="padding:32px">\n'
        f'<h1 style="margin:0 0 24px;font-size:20px">{html.escape(title)}</h1>\n'
        f"{body}\n"
        f'<p style="margin:24px 0 0;color:#71717a">— {html.escape(PRODUCT)}</p>\n'
        "</td></tr></table>\n</body></html>\n"
    )


# ── the mails ──────────────────────────────────────────────────────────────────────────


def email_verification(event: EmailVerificationRequested, *, public_url: str) -> Mail:
    link = verification_link(public_url, event.token)
    greeting = _greeting(event.name)
    intro = f"Welcome to {PRODUCT}! Please confirm your email address by opening this link:"
    outro = (
        f"The link works once. If you did not create a {PRODUCT} account, ignore this "
        "email: nothing happens without the link."
    )
    return Mail(
        to=event.email,
        to_name=display_name(event.name) or None,
        subject=f"Confirm your email address for {PRODUCT}",
        text=_text(greeting, intro, link, outro),
        html=_html(
            "Confirm your email address",
            [
                html.escape(greeting),
                html.escape(f"Welcome to {PRODUCT}! Please confirm your email address."),
            ],
            ("Confirm my email address", link),
            (html.escape(outro),),
        ),
        kind="email_verification",
    )


def password_reset(event: PasswordResetRequested, *, public_url: str) -> Mail:
    link = reset_link(public_url, event.token)
    greeting = _greeting(event.name)
    intro = (
        f"Someone, hopefully you, asked to reset the password of your {PRODUCT} account "
        f"({event.email}). To choose a new password, open this link:"
    )
    outro = (
        "The link works once and expires soon. If you did not ask for this, ignore this "
        "email: your password stays as it is."
    )
    return Mail(
        to=event.email,
        to_name=display_name(event.name) or None,
        subject=f"Reset your {PRODUCT} password",
        text=_text(greeting, intro, link, outro),
        html=_html(
            "Reset your password",
            [
                html.escape(greeting),
                html.escape(
                    f"Someone, hopefully you, asked to reset the password of your {PRODUCT} "
                    f"account ({event.email})."
                ),
            ],
            ("Choose a new password", link),
            (html.escape(outro),),
        ),
        kind="password_reset",
    )


def password_changed(event: PasswordChanged, *, public_url: str) -> Mail:
    site = _base(public_url)
    intro = f"The password of your {PRODUCT} account ({event.email}) was just changed."
    advice = (
        "If that was you, there is nothing to do. If it was not, someone else may know your "
        f"password: use “Forgot password” at {site} to set a new one right away."
    )
    return Mail(
        to=event.email,
        subject=f"Your {PRODUCT} password was changed",
        text=_text("Hello,", intro, advice),
        html=_html(
            "Your password was changed",
            [
                "Hello,",
                html.escape(intro),
                html.escape(
                    "If that was you, there is nothing to do. If it was not, someone else may "
                    "know your password: use “Forgot password” on the sign-in page to set a "
                    "new one right away."
                ),
            ],
            (f"Open {PRODUCT}", site),
        ),
        kind="password_changed",
    )


EmailEvent = EmailVerificationRequested | PasswordResetRequested | PasswordChanged

_EMAIL_TEMPLATES: dict[type[Any], Callable[..., Mail]] = {
    EmailVerificationRequested: email_verification,
    PasswordResetRequested: password_reset,
    PasswordChanged: password_changed,
}


def render_email(event: EmailEvent, *, public_url: str) -> Mail:
    """The mail for this event; TypeError for an event that has no email template."""
    template = _EMAIL_TEMPLATES.get(type(event))
    if template is None:
        raise TypeError(f"no email template for {type(event).__name__}")
    return template(event, public_url=public_url)


def simple_mail(to: str, title: str, text: str, *, kind: str, link: str | None = None) -> Mail:
    """A one-paragraph mail (every notice that is not one of auth's own mails); with
    `link`, a button to the page it is about."""
    return Mail(
        to=to,
        subject=f"{PRODUCT}: {display_name(title)}",
        text=_text(text, f"Open: {link}") if link else _text(text),
        html=_html(title, [html.escape(text)], button=("Open", link) if link else None),
        kind=kind,
    )

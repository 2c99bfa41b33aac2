"""Notification mails as rendered: subjects, both bodies, links, escaping, and the MIME
message the email channel builds from them (no server needed)."""

from __future__ import annotations

import email
import re
from email import policy
from email.message import EmailMessage
from urllib.parse import parse_qs, urlsplit

import pytest

from actors.auth.messages import (
    EmailVerificationRequested,
    PasswordChanged,
    PasswordResetRequested,
    UserRegistered,
)
from actors.notifications.channels import MAX_ANSWER_CHARS, DeliveryFailed
from actors.notifications.channels.email import (
    EmailDeliveryFailed,
    Mail,
    SmtpSettings,
    build_message,
)
from actors.notifications.deliveries import DELIVERY_BACKOFF
from actors.notifications.templates import (
    EmailEvent,
    display_name,
    render_email,
    reset_link,
    verification_link,
)
from actors.runtime import Backoff

PUBLIC_URL = "https://splitgo.example"
TOKEN = "tok_Ab-9_zz"


def verification(name: str = "Ada Lovelace", token: str = TOKEN) -> EmailVerificationRequested:
    return EmailVerificationRequested(user_id="u1", email="ada@example.com", name=name, token=token)


def reset(name: str = "Ada", token: str = TOKEN) -> PasswordResetRequested:
    return PasswordResetRequested(user_id="u1", email="ada@example.com", name=name, token=token)


def links_in(text: str) -> list[str]:
    return re.findall(r"https?://\S+", text)


def hrefs_in(html: str) -> list[str]:
    return re.findall(r'href="([^"]*)"', html)


# ── links ──────────────────────────────────────────────────────────────────────────────


def test_links_are_built_from_the_public_url() -> None:
    """Verification and reset links are the public URL plus their page path and the token."""
    assert verification_link(PUBLIC_URL, "abc") == f"{PUBLIC_URL}/verify-email?token=abc"
    assert reset_link(PUBLIC_URL, "abc") == f"{PUBLIC_URL}/reset-password?token=abc"


@pytest.mark.parametrize("base", [f"{PUBLIC_URL}/", f"  {PUBLIC_URL}// ", PUBLIC_URL])
def test_a_trailing_slash_on_the_public_url_makes_no_double_slash(base: str) -> None:
    """Trailing slashes and surrounding whitespace on the public URL never produce a double
    slash."""
    assert verification_link(base, "abc") == f"{PUBLIC_URL}/verify-email?token=abc"


def test_links_keep_a_path_prefix_of_the_public_url() -> None:
    """A path prefix in the public URL is kept in front of the page path."""
    link = reset_link("http://127.0.0.1:8080/app", "abc")
    assert link == "http://127.0.0.1:8080/app/reset-password?token=abc"


def test_a_token_with_url_special_characters_reaches_the_page_unchanged() -> None:
    """A token with URL-special characters is percent-encoded in the link and decodes back to the
    same token."""
    token = "a+b/c=d&e f?#%"
    link = verification_link(PUBLIC_URL, token)
    parts = urlsplit(link)
    assert parts.path == "/verify-email"
    assert parse_qs(parts.query) == {"token": [token]}
    assert " " not in link
    assert "&" not in link
    assert "#" not in link


# ── the mails ──────────────────────────────────────────────────────────────────────────


def test_the_verification_mail_carries_the_link_in_both_parts() -> None:
    """The verification mail greets the user by name and carries the link once in the text part and
    twice in the HTML part."""
    mail = render_email(verification(), public_url=PUBLIC_URL)
    link = f"{PUBLIC_URL}/verify-email?token={TOKEN}"
    assert mail.to == "ada@example.com"
    assert mail.to_name == "Ada Lovelace"
    assert mail.subject == "Confirm your email address for splitgo"
    assert mail.kind == "email_verification"
    assert mail.text.startswith("Hi Ada Lovelace,\n\n")
    assert links_in(mail.text) == [link]
    # the button and the copyable fallback
    assert hrefs_in(mail.html) == [link, link]
    assert "Hi Ada Lovelace," in mail.html
    assert mail.html.startswith("<!DOCTYPE html>")


def test_the_reset_mail_carries_the_reset_link() -> None:
    """The reset mail carries the reset link in both parts, names the address, and says to ignore it
    if unrequested."""
    mail = render_email(reset(), public_url=PUBLIC_URL)
    link = f"{PUBLIC_URL}/reset-password?token={TOKEN}"
    assert mail.subject == "Reset your splitgo password"
    assert mail.kind == "password_reset"
    assert links_in(mail.text) == [link]
    assert hrefs_in(mail.html) == [link, link]
    assert "ada@example.com" in mail.text
    assert "ignore this email" in mail.text


def test_the_password_changed_mail_warns_and_carries_no_token() -> None:
    """The password-changed mail warns of the change with a generic greeting and links only to the
    public URL, with no token in it."""
    event = PasswordChanged(user_id="u1", email="ada@example.com")
    mail = render_email(event, public_url=f"{PUBLIC_URL}/")
    assert mail.subject == "Your splitgo password was changed"
    assert mail.to == "ada@example.com"
    assert mail.to_name is None
    assert mail.text.startswith("Hello,\n\n")
    assert "was just changed" in mail.text
    assert links_in(mail.text) == [PUBLIC_URL]
    assert hrefs_in(mail.html) == [PUBLIC_URL, PUBLIC_URL]
    assert "token" not in mail.text
    assert "token" not in mail.html


def test_names_are_escaped_in_html_and_kept_in_text() -> None:
    """Markup in a name is HTML-escaped in the HTML part and kept verbatim in the text part."""
    name = '<script>alert("x")</script> & Co'
    mail = render_email(verification(name=name), public_url=PUBLIC_URL)
    assert "<script>" not in mail.html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co" in mail.html
    assert f"Hi {name}," in mail.text


def test_a_link_is_escaped_inside_the_html_attribute() -> None:
    """A token with quotes and angle brackets is percent-encoded so it cannot break out of the href
    attribute."""
    mail = render_email(verification(token='x"><b>'), public_url=PUBLIC_URL)
    # quoted in the URL already; nothing can close the attribute
    assert '"><b>' not in mail.html
    assert hrefs_in(mail.html) == [f"{PUBLIC_URL}/verify-email?token=x%22%3E%3Cb%3E"] * 2


def test_a_public_url_with_markup_is_escaped_in_html() -> None:
    """Ampersands and quotes in the public URL are HTML-escaped inside the href attribute."""
    mail = render_email(
        PasswordChanged(user_id="u1", email="a@example.com"),
        public_url='https://x.example/?a=1&b="2"',
    )
    assert 'href="https://x.example/?a=1&amp;b=&quot;2&quot;"' in mail.html


def test_line_breaks_in_a_name_cannot_forge_lines() -> None:
    """Line breaks in a name collapse to one space, so a name cannot forge header or body
    lines (a NUL never gets this far: the event refuses it, actors/runtime/bounds.py)."""
    mail = render_email(verification(name="Eve\r\nBcc: victim@example.com"), public_url=PUBLIC_URL)
    assert mail.to_name == "Eve Bcc: victim@example.com"
    assert mail.text.splitlines()[0] == "Hi Eve Bcc: victim@example.com,"
    assert "\r" not in mail.text


def test_an_empty_name_greets_without_one() -> None:
    """A blank name gives a generic Hello greeting and no recipient display name."""
    mail = render_email(verification(name=" \t "), public_url=PUBLIC_URL)
    assert mail.text.startswith("Hello,\n")
    assert mail.to_name is None
    assert display_name(None) == ""


def test_subjects_are_one_line() -> None:
    """Every mail kind has a non-empty subject without line breaks."""
    events: list[EmailEvent] = [
        verification(),
        reset(),
        PasswordChanged(user_id="u1", email="a@example.com"),
    ]
    for event in events:
        subject = render_email(event, public_url=PUBLIC_URL).subject
        assert "\n" not in subject
        assert "\r" not in subject
        assert subject


def test_an_event_without_a_template_is_refused() -> None:
    """Rendering an event that has no mail template raises a TypeError naming the event."""
    event = UserRegistered(user_id="u1", email="a@example.com", name="A")
    with pytest.raises(TypeError, match="UserRegistered"):
        render_email(event, public_url=PUBLIC_URL)  # type: ignore[arg-type]


# ── the MIME message ───────────────────────────────────────────────────────────────────


def parse(message: EmailMessage) -> EmailMessage:
    parsed = email.message_from_bytes(message.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_the_message_is_multipart_alternative_with_text_then_html() -> None:
    """The built message is multipart/alternative with text then HTML, and carries the subject,
    sender, encoded recipient, Message-ID, Auto-Submitted and Date headers."""
    mail = render_email(verification(name="Zoë Ünal"), public_url=PUBLIC_URL)
    parsed = parse(build_message(mail, "splitgo <no-reply@splitgo.example>"))
    assert parsed.get_content_type() == "multipart/alternative"
    parts = list(parsed.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    text = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    assert text is not None
    assert html is not None
    assert text.get_content() == mail.text
    assert html.get_content() == mail.html
    assert parsed["Subject"] == mail.subject
    assert parsed["From"] == "splitgo <no-reply@splitgo.example>"
    assert parsed["To"] == "Zoë Ünal <ada@example.com>"
    assert parsed["Message-ID"].endswith("@splitgo.example>")
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["Date"]


def test_a_readable_message_shows_the_link_unencoded() -> None:
    """A readable message uses 8bit encoding, so the link appears whole rather than
    quoted-printable."""
    mail = render_email(verification(), public_url=PUBLIC_URL)
    raw = build_message(mail, "no-reply@splitgo.example", readable=True).as_bytes()
    link = f"{PUBLIC_URL}/verify-email?token={TOKEN}".encode()
    assert link in raw  # not split or =3D-encoded by quoted-printable
    assert b"Content-Transfer-Encoding: 8bit" in raw


def test_an_address_that_cannot_go_into_a_header_fails_for_good() -> None:
    """A recipient address with a CRLF header injection makes building fail with a permanent
    delivery error."""
    mail = Mail(to="a@example.com\r\nBcc: x@example.com", subject="s", text="t", html="<p>t</p>")
    with pytest.raises(EmailDeliveryFailed) as caught:
        build_message(mail, "no-reply@splitgo.example")
    assert caught.value.permanent


def test_a_provider_answer_is_kept_to_one_bounded_line() -> None:
    """A provider's answer is collapsed to a single line cut to MAX_ANSWER_CHARS, and an empty one
    reads no answer."""
    error = DeliveryFailed("550 5.1.1\r\n  no such user " + "x" * 5000)
    assert error.answer.startswith("550 5.1.1 no such user xxx")
    assert len(error.answer) == MAX_ANSWER_CHARS
    assert DeliveryFailed("").answer == "no answer"


# ── settings and backoff ───────────────────────────────────────────────────────────────


def test_smtp_settings_pick_the_port_of_the_tls_mode() -> None:
    """The SMTP port defaults to 587 for STARTTLS, 465 for TLS and 25 for none, unless one is
    set."""
    assert SmtpSettings(host="smtp.example").effective_port == 587
    assert SmtpSettings(host="smtp.example", tls="tls").effective_port == 465
    assert SmtpSettings(host="smtp.example", tls="none").effective_port == 25
    assert SmtpSettings(host="smtp.example", tls="none", port=1025).effective_port == 1025


def test_smtp_settings_never_show_the_password() -> None:
    """The SMTP password does not appear in the settings' repr."""
    settings = SmtpSettings(host="smtp.example", user="me", password="hunter2-secret")
    assert "hunter2-secret" not in repr(settings)


@pytest.mark.parametrize(
    ("changes", "names"),
    [
        ({"host": ""}, "SPLITGO_SMTP_HOST"),
        ({"tls": "ssl"}, "SPLITGO_SMTP_TLS"),
        ({"port": 70000}, "SPLITGO_SMTP_PORT"),
        ({"user": "me"}, "SPLITGO_SMTP_USER"),
        ({"password": "pw"}, "SPLITGO_SMTP_PASSWORD"),
        ({"sender": "splitgo"}, "SPLITGO_SMTP_SENDER"),
    ],
)
def test_bad_smtp_settings_name_the_variable(changes: dict[str, object], names: str) -> None:
    """An empty host, unknown TLS mode, bad port, user without password or the reverse, or a sender
    without an address is refused with an error naming the variable."""
    fields: dict[str, object] = {"host": "smtp.example", **changes}
    with pytest.raises(ValueError, match=names):
        SmtpSettings(**fields)  # type: ignore[arg-type]


def test_backoff_doubles_up_to_the_maximum() -> None:
    """Without jitter the backoff doubles from its initial delay and stays at the maximum."""
    backoff = Backoff(initial=1.0, maximum=10.0, jitter=0.0)
    assert [backoff.delay(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert backoff.delay(10_000) == 10.0


def test_backoff_jitter_takes_off_at_most_its_fraction() -> None:
    """Jitter only shortens a delay, by less than its fraction, and varies between calls."""
    assert Backoff(8.0, 3600.0, jitter=0.5, random=lambda: 0.0).delay(1) == 8.0
    assert Backoff(8.0, 3600.0, jitter=0.5, random=lambda: 0.999999).delay(1) > 4.0
    delays = {Backoff(8.0, 3600.0, jitter=0.5).delay(1) for _ in range(50)}
    assert all(4.0 < d <= 8.0 for d in delays)
    assert len(delays) > 1


def test_default_backoff_spreads_six_tries_over_about_half_an_hour() -> None:
    """The deliveries' backoff waits 1, 2, 4, 8 and 16 minutes between six tries (before
    jitter, which takes up to half off each), at most an hour."""
    waits = [DELIVERY_BACKOFF.base(n) for n in range(1, 6)]  # after tries 1..5; the 6th is last
    assert waits == [60.0, 120.0, 240.0, 480.0, 960.0]
    assert DELIVERY_BACKOFF.base(100) == 3600.0
    assert (DELIVERY_BACKOFF.factor, DELIVERY_BACKOFF.jitter) == (2.0, 0.5)
    assert all(30.0 <= DELIVERY_BACKOFF.delay(1) <= 60.0 for _ in range(50))

"""Adversarial text from a relay: secrets are redacted, escapes and markup never reach the terminal."""

from __future__ import annotations

import io
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from relayaudit.sanitize import REDACTED, excerpt, inert, redact, strip_control

OPENAI_KEY = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx0123456789"
ANTHROPIC_KEY = "sk-ant-" + "api03-AbCdEfGhIjKlMnOp_qrstuv-0123456789"  # split: not a real key
GOOGLE_KEY = "AIza" + "SyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW"  # split: not a real key
BEARER_TOKEN = "eyJhbGciOiJIUzI1NiJ9.payload.signature"

# Rich's own styling uses SGR sequences only; anything else starting with ESC came from the input.
_RICH_SGR = re.compile(r"\x1b\[[0-9;]*m")

# Text made of the pieces that matter for terminals and rich markup.
hostile_piece = st.sampled_from(
    [
        "\x1b",
        "\x1b[31m",
        "\x1b[0m",
        "\x1b[2J",
        "\x1b]0;title\x07",
        "\x1b]8;;http://evil.example\x1b\\",
        "\x1bP1$r\x1b\\",
        "\x9b31m",
        "\x07",
        "\x00",
        "\r",
        "\x7f",
        "[bold red]",
        "[/]",
        "[/bold red]",
        "[link=http://x]",
        "[@click=app.quit]",
        "[#ff0000]",
        "[",
        "]",
        "\\",
        "\\[",
        "a",
        "b c",
        "\n",
        "\t",
        "é",
        "日本",
    ]
)
hostile_text = st.lists(hostile_piece, max_size=15).map("".join)
any_text = st.text(max_size=200)


def render(markup: str, *, color_system: str | None = None) -> str:
    """What a terminal receives when rich prints `markup` (no highlighting, no emoji codes)."""
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        force_terminal=True,
        color_system=color_system,  # type: ignore[arg-type]
        width=10_000,
        highlight=False,
        emoji=False,
        soft_wrap=True,
    )
    console.print(markup, end="")
    return buffer.getvalue()


# --- redact ---------------------------------------------------------------------------------------------


def test_redact_given_secret() -> None:
    secret = "my-relay-secret-value"
    out = redact(f"the key {secret} was echoed back: {secret}!", [secret])
    assert secret not in out
    assert out == f"the key {REDACTED} was echoed back: {REDACTED}!"


def test_redact_ignores_empty_secret() -> None:
    assert redact("nothing to hide", ["", ""]) == "nothing to hide"


@pytest.mark.parametrize(
    ("text", "leaked"),
    [
        (f"key={OPENAI_KEY} end", OPENAI_KEY),
        ("sk-" + "abcdefghijklmnopqrstuvwxyz123456", "sk-" + "abcdefghijklmnopqrstuvwxyz123456"),
        (f"anthropic {ANTHROPIC_KEY}", ANTHROPIC_KEY),
        (f"google {GOOGLE_KEY}", GOOGLE_KEY),
        (f"Authorization: Bearer {BEARER_TOKEN}", BEARER_TOKEN),
        (f"authorization: bearer {BEARER_TOKEN}", BEARER_TOKEN),
        ("x-api-key: abcdef0123456789", "abcdef0123456789"),
        ("X-Api-Key: abcdef0123456789", "abcdef0123456789"),
        ("x-goog-api-key: abcdef0123456789", "abcdef0123456789"),
        ('{"api_key": "abcdef0123456789"}', "abcdef0123456789"),
        ("api-key=abcdef0123456789&x=1", "abcdef0123456789"),
    ],
)
def test_redact_credential_shapes(text: str, leaked: str) -> None:
    out = redact(text)
    assert leaked not in out
    assert REDACTED in out


def test_redact_keeps_ordinary_text() -> None:
    text = "Ask a skilled person; sk-short is fine, and bearer of news is too. The api key is not here."
    assert redact(text) == text


def test_redact_given_secret_of_no_known_shape() -> None:
    out = redact("token=zz9-plural-z-alpha here", ["zz9-plural-z-alpha"])
    assert "zz9-plural-z-alpha" not in out


# --- strip_control -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\x1b[31mred\x1b[0m", "red"),
        ("\x1b[1;38;5;196mbold\x1b[m", "bold"),
        ("a\x1b[2Jb\x1b[Hc", "abc"),
        ("\x1b[?25lhidden cursor\x1b[?25h", "hidden cursor"),
        ("\x1b]0;evil title\x07text", "text"),
        ("\x1b]8;;http://evil.example\x1b\\link\x1b]8;;\x1b\\", "link"),
        ("\x1b]52;c;ZXZpbA==\x07clipboard", "clipboard"),
        ("\x1bcreset", "reset"),
        ("\x1b7saved\x1b8", "saved"),
        ("\x1b(Bcharset\x1b[m", "charset"),
        ("\x1bP1$r0m\x1b\\dcs", "dcs"),
        ("\x1b_apc payload\x1b\\apc", "apc"),
        ("\x1b[incomplete", "ncomplete"),
        ("bell\x07 nul\x00 del\x7f bs\x08", "bell nul del bs"),
        ("c1\x85 \x9b31m \x90", "c1 31m "),
        ("carriage\rreturn", "carriagereturn"),
        ("form\x0cfeed\x0bvtab", "formfeedvtab"),
    ],
)
def test_strip_control_removes_sequences_and_controls(text: str, expected: str) -> None:
    assert strip_control(text) == expected


def test_strip_control_keeps_newlines_tabs_and_unicode() -> None:
    text = "line one\n\tindented — ünïcødé 日本語 🎉\n"
    assert strip_control(text) == text


@settings(max_examples=200)
@given(text=st.one_of(hostile_text, any_text))
def test_strip_control_leaves_no_control_characters(text: str) -> None:
    out = strip_control(text)
    assert all(ch in "\n\t" or not (ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F) for ch in out)
    assert strip_control(out) == out


# --- inert ---------------------------------------------------------------------------------------------


def test_inert_printed_has_no_escape_from_input() -> None:
    hostile = "\x1b[31mred\x1b[0m \x1b]0;title\x07 \x1b[2J clear \x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\"
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, color_system="truecolor", highlight=False)
    console.print(inert(hostile))
    out = buffer.getvalue()
    assert "\x1b" not in out
    assert "red" in out
    assert "clear" in out
    assert "link" in out


def test_inert_shows_markup_literally() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, color_system="truecolor", highlight=False)
    console.print(inert("[bold red]x[/]"))
    out = buffer.getvalue()
    assert out == "[bold red]x[/]\n"
    assert "\x1b" not in out


def test_inert_with_record_console_exports_literal_markup() -> None:
    console = Console(record=True, file=io.StringIO(), force_terminal=True, width=200)
    console.print(inert("[link=http://evil.example]click[/link] [@click=app.quit]quit[/] \x1b[5mblink"))
    text = console.export_text()
    assert "[link=http://evil.example]click[/link]" in text
    assert "[@click=app.quit]quit[/]" in text
    assert "\x1b" not in text
    assert "\x1b[5m" not in console.export_text(styles=True)


def test_inert_inside_markup_keeps_the_surrounding_markup() -> None:
    out = render(f"[bold]{inert('[/bold][red]pwned')}[/bold] tail", color_system="truecolor")
    assert _RICH_SGR.sub("", out) == "[/bold][red]pwned tail"
    # The surrounding bold is opened and closed by our markup, and nothing turned red.
    assert "\x1b[1m" in out
    assert "\x1b[31m" not in out


@pytest.mark.parametrize(
    "text",
    [
        "\\[bold]x",
        "\\\\[bold]x",
        "x\\[/]",
        "a\\[b",
        "\\[",
        "C:\\Users\\[me]\\",
        "regex \\[a-z]+ and \\\\[0-9]",
        "ends with one backslash \\",
        "ends with three backslashes \\\\\\",
        "[[bold]]",
        "[bold",
        "[#fff]x[/#fff]",
    ],
)
def test_inert_backslashes_and_brackets_print_literally_inside_markup(text: str) -> None:
    assert render(f"[bold]{inert(text)}[/bold]") == text
    assert render(f"[bold]{inert(text)}[/bold][italic]{inert(text)}[/italic]") == text + text
    if not text.endswith("\\"):
        assert render(f"<{inert(text)}>") == f"<{text}>"


@pytest.mark.parametrize("text", ["\\[bold]x", "a\\[b", "\\[", "regex \\[a-z]+", "[bold]x\\[/]y"])
def test_inert_backslash_bracket_prints_literally_alone(text: str) -> None:
    assert render(inert(text)) == text


def test_inert_trailing_backslashes_cannot_escape_a_closing_tag() -> None:
    out = render(f"[red]{inert('evil' + chr(92) * 3)}[/red] safe", color_system="truecolor")
    assert _RICH_SGR.sub("", out) == "evil\\\\\\ safe"
    # "safe" is outside the red span: the closing tag still closed it.
    assert out.endswith("\x1b[0m safe")


@settings(max_examples=300)
@given(text=st.one_of(hostile_text, any_text))
def test_inert_never_contains_escape(text: str) -> None:
    out = inert(text)
    assert "\x1b" not in out
    assert "\x9b" not in out


@settings(max_examples=300)
@given(text=hostile_text)
def test_inert_prints_exactly_the_stripped_text_inside_markup(text: str) -> None:
    text = text.replace("\t", " ")  # rich expands tabs to columns, which says nothing about escaping
    assert render(f"[bold]{inert(text)}[/bold]") == strip_control(text)


@settings(max_examples=100)
@given(text=hostile_text)
def test_inert_printed_in_colour_has_only_riches_own_escapes(text: str) -> None:
    out = render(f"[italic]{inert(text)}[/italic]", color_system="truecolor")
    assert "\x1b" not in _RICH_SGR.sub("", out)


# --- excerpt -------------------------------------------------------------------------------------------


def test_excerpt_is_single_line() -> None:
    out = excerpt("first line\nsecond\r\nthird\rfourth\u2028fifth\u2029sixth\x85seventh\tend")
    assert len(out.splitlines()) == 1
    assert "\n" not in out
    assert "\r" not in out
    assert "\t" not in out
    assert "first line\\nsecond" in out


def test_excerpt_short_text_unchanged() -> None:
    assert excerpt('{"error": "bad"}') == '{"error": "bad"}'


def test_excerpt_is_bounded() -> None:
    body = "x" * 10_000
    out = excerpt(body, limit=100)
    assert out.startswith("x" * 100)
    assert len(out) <= 100 + 40
    assert "10000 chars" in out
    assert len(excerpt(body)) <= 240 + 40


def test_excerpt_accepts_bytes_including_invalid_utf8() -> None:
    out = excerpt(b'{"a": "\xff\xfe caf\xc3\xa9"}')
    assert "café" in out
    assert "\ufffd" in out


def test_excerpt_redacts_secrets_and_credential_shapes() -> None:
    body = f'{{"echo": "{OPENAI_KEY}", "mine": "hunter2-secret", "auth": "Bearer {BEARER_TOKEN}"}}'
    out = excerpt(body, secrets=["hunter2-secret"])
    assert OPENAI_KEY not in out
    assert "hunter2-secret" not in out
    assert BEARER_TOKEN not in out
    assert out.count(REDACTED) == 3


def test_excerpt_redacts_before_truncating() -> None:
    body = "a" * 230 + OPENAI_KEY
    out = excerpt(body)
    assert OPENAI_KEY[:12] not in out


def test_excerpt_redacts_keys_split_by_control_sequences() -> None:
    hidden = "sk-ant-api03-\x1b[0mAbCdEfGhIjKlMnOp"
    out = excerpt(hidden)
    assert "AbCdEfGhIjKlMnOp" not in out
    assert REDACTED in out


def test_excerpt_strips_escapes() -> None:
    out = excerpt("\x1b[31mred\x1b[0m\x07 and \x1b]0;title\x07done")
    assert out == "red and done"


@settings(max_examples=200)
@given(text=st.one_of(hostile_text, any_text), limit=st.integers(min_value=1, max_value=300))
def test_excerpt_properties(text: str, limit: int) -> None:
    out = excerpt(text, limit=limit)
    assert len(out.splitlines()) <= 1
    assert "\x1b" not in out
    assert len(out) <= limit + len(f"... ({len(text) * 10} chars)")

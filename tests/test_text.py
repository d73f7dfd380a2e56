"""Outside text is inert: controls visible, markup escaped, formulas defused, names capped."""

from rich.text import Text

from dorsimeter.text import device_name, inert_cell, markup_safe, terminal_safe


def test_terminal_safe_shows_escape_sequences_instead_of_sending_them():
    osc_title = "\x1b]0;pwned\x07Ana"
    out = terminal_safe(osc_title)
    assert "\x1b" not in out and "\x07" not in out
    assert out == "\\x1b]0;pwned\\x07Ana"
    assert terminal_safe("Zoë Ødegård") == "Zoë Ødegård"
    assert "\u202e" not in terminal_safe("abc\u202edef")
    assert terminal_safe("a\udcffb") == "a\\udcffb"  # an unpaired surrogate from argv


def test_markup_safe_renders_as_the_literal_text():
    for hostile in ("[/]", "[@click=app.quit]x", "[bold red]loud[/]", "\\[x]"):
        rendered = Text.from_markup(markup_safe(hostile)).plain
        assert rendered == hostile


def test_inert_cell_defuses_formula_prefixes_and_keeps_numbers():
    assert inert_cell('=HYPERLINK("http://x","y")') == "'=HYPERLINK(\"http://x\",\"y\")"
    assert inert_cell("@SUM(A1)") == "'@SUM(A1)"
    assert inert_cell("\t=1+1") == "'\t=1+1"
    assert inert_cell("-3") == "'-3"
    assert inert_cell("Ana") == "Ana"
    assert inert_cell(-3.5) == -3.5 and inert_cell(None) is None and inert_cell(7) == 7


def test_device_name_is_capped_and_printable():
    assert device_name("dorsi-3f2a") == "dorsi-3f2a"
    assert device_name("\x1b[31mred\x07") == "[31mred"
    assert len(device_name("x" * 500)) == 32
    assert device_name(None) == ""

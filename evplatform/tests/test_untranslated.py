"""The English finder used by the Chinese-page tests finds English and lets data pass."""

import pytest

from evplatform.tests.untranslated import html_pieces, untranslated


@pytest.mark.parametrize("tag, text", [
    ("option", "电站与充电桩 | 充电桩 | Can add pile"),   # an unmarked English string
    ("th", "rated power"),
    ("td", "charging order"),                            # a msgid rendered untranslated
    ("a", "Heartbeat"),
    ("button", "Save and continue editing"),
])
def test_english_is_found(tag, text):
    assert untranslated([(tag, text)])


@pytest.mark.parametrize("tag, text", [
    ("td", "44010600000111"), ("td", "68 0D 00 01"), ("td", "order:CD2026:charge"),
    ("td", "120.0 kW"), ("td", "DC"), ("th", "充电桩"), ("td", "ops-test"), ("td", "0x3B"),
    ("code", "pile_code"), ("td", "¥12.30"),
])
def test_data_and_chinese_pass(tag, text):
    assert not untranslated([(tag, text)])


def test_allowed_words_and_hidden_parts():
    assert not untranslated([("a", "zhanzhang")], frozenset({"zhanzhang"}))
    html = ('<div id="user-tools">Welcome admin</div><script>var Heartbeat = 1</script>'
            '<p hidden>Not shown</p><input type="submit" value="Save"><th>名称</th>')
    assert untranslated(html_pieces(html)) == ["<button>: Save"]

"""Finding English left on a page that a Chinese station owner reads.

A page is reduced to its visible text pieces, each with the tag around it (``th``, ``td``,
``label``, ``a``, ``option``, ``button``, …). A piece is *untranslated* when

- it is, word for word, a msgid of the zh-hans catalogue (ours, Django's, import-export's):
  it was meant to be translated and was rendered in English (e.g. translated too early);
- or, in the page's chrome (headings, labels, column heads, filters, buttons, links, help
  and choices), it is English words that no catalogue knows: a string nobody marked.

Data (pile codes, hex frames, user names, numbers, units) is not English prose and passes:
the second rule applies only to pieces of two or more letters-only words, or one word of
four letters or more, outside an allowlist of field terms (kWh, SOC, VIN, QR, …).
Used by the admin page tests (Django's test client) and the browser tests alike.
"""

from __future__ import annotations

import re
from functools import cache
from html.parser import HTMLParser

# Terms the field writes in Latin letters, and brands.
ALLOWED_WORDS = {
    "kwh", "kw", "soc", "vin", "qr", "pdf", "csv", "xlsx", "xls", "json", "dc", "ac", "ykc",
    "ocpp", "cec", "id", "url", "api", "hex", "ip", "iccid", "sim", "vip", "svip", "wechat",
    "appid", "mchid", "openid", "unionid", "gcj", "utc", "gmt", "sms", "ok", "v", "a", "wx",
    "yuan", "tcp", "http", "https", "mini", "program", "django", "swagger", "oas", "sn",
    "amap", "bms", "ftp", "lan", "wan", "mac", "control", "command", "ldap", "scene",
    "getwxacodeunlimit", "gb", "t", "appsecret", "apiv3", "key", "basic",
    # T/CEC 102-2016 field names, as partners' documents write them
    "operatorid", "datasecret", "datasecretiv", "sigsecret", "operatorsecret",
}
CHROME_TAGS = {"th", "label", "h1", "h2", "h3", "h4", "caption", "legend", "button", "option",
               "a", "summary", "p", "li", "span", "div", "strong", "dt", "title", "input", "td"}
SKIP_TAGS = {"script", "style", "code", "pre", "textarea", "noscript"}
WORD = re.compile(r"[A-Za-z]+")


@cache
def catalogue_msgids() -> frozenset[str]:
    """Every msgid the zh-hans catalogues translate (all installed apps, merged)."""
    from django.utils.translation import trans_real

    catalog = trans_real.translation("zh-hans")._catalog
    out = set()
    for key, value in catalog.items():
        msgid = key[0] if isinstance(key, tuple) else key
        msgid = msgid.split("\x04", 1)[-1]  # drop a context
        text = value if isinstance(value, str) else ""
        if msgid and msgid != text and WORD.search(msgid) and "%" not in msgid and "{" not in msgid:
            out.add(msgid.strip())
    return frozenset(out)


def _normal(text: str) -> str:
    return " ".join(text.split()).strip(" :：·|›/")


def english_runs(text: str, allow: frozenset[str] = frozenset()) -> list[str]:
    """Runs of English words in ``text``: whitespace-separated tokens of Latin letters only
    (codes like ``ops-test`` or ``0x3B`` are data), outside the allowlists; a run counts when
    it has two words or more, or one word of four letters or more."""
    runs, run = [], []
    for token in re.split(r"[\s\u3000-\u303f\u4e00-\u9fff\uff00-\uffef|()（）,，：;；]+", text):
        word = token.strip(".!?'\"")
        if word and WORD.fullmatch(word) and word.lower() not in ALLOWED_WORDS and word not in allow:
            run.append(word)
            continue
        if run:
            runs.append(" ".join(run))
        run = []
    if run:
        runs.append(" ".join(run))
    return [r for r in runs if " " in r or len(r) >= 4]


def untranslated(pieces: list[tuple[str, str]], allow: frozenset[str] = frozenset()) -> list[str]:
    """The untranslated pieces among ``(tag, text)`` pairs, each as ``"<tag>: text"``;
    ``allow`` names data words of the page (user names, …)."""
    msgids = catalogue_msgids()
    found = []
    for tag, raw in pieces:
        text = _normal(raw)
        if not text or tag in SKIP_TAGS:
            continue
        if text in msgids and len(text) > 2 and not text.isupper():
            found.append(f"<{tag}>: {text}")
        elif tag in CHROME_TAGS and english_runs(text, allow):
            found.append(f"<{tag}>: {text}")
    return sorted(set(found))


class _Pieces(HTMLParser):
    """Visible text pieces of an HTML page with their innermost tag; input button values,
    placeholders and titles count as text."""

    VOID = {"br", "img", "input", "meta", "link", "hr", "col", "area", "base", "source", "wbr"}

    def __init__(self, skip_ids: set[str]):
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []
        self.pieces: list[tuple[str, str]] = []
        self.skip_ids = skip_ids

    def _hidden(self) -> bool:
        return any(hidden for _, hidden in self.stack)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        hidden = (
            tag in SKIP_TAGS or attrs.get("id") in self.skip_ids or "hidden" in attrs
            or attrs.get("type") == "hidden"
            or "display: none" in (attrs.get("style") or "").replace(":none", ": none")
        )
        if tag == "input" and not hidden and attrs.get("type") in ("submit", "button"):
            self.pieces.append(("button", attrs.get("value") or ""))
        if not hidden and not self._hidden():
            for name in ("placeholder", "title", "aria-label"):
                if attrs.get(name):
                    self.pieces.append((tag, attrs[name]))
        if tag not in self.VOID:
            self.stack.append((tag, hidden))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data):
        if data.strip() and self.stack and not self._hidden():
            self.pieces.append((self.stack[-1][0], data))


def html_pieces(html: str, skip_ids: frozenset[str] = frozenset({"user-tools"})) -> list[tuple[str, str]]:
    parser = _Pieces(set(skip_ids))
    parser.feed(html)
    return parser.pieces


# In a browser: the same pieces from the rendered DOM (what is really visible).
BROWSER_PIECES_JS = """
() => {
  const out = [];
  const skip = new Set(['SCRIPT', 'STYLE', 'CODE', 'PRE', 'TEXTAREA', 'NOSCRIPT']);
  const visible = (el) => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, el = node.parentElement;
    if (!el || skip.has(el.tagName) || el.closest('#user-tools') || !visible(el)) continue;
    if (node.textContent.trim()) out.push([el.tagName.toLowerCase(), node.textContent]);
  }
  for (const el of document.querySelectorAll('input[type=submit], input[type=button], [placeholder], [title]')) {
    if (!visible(el) || el.closest('#user-tools')) continue;
    if (el.value && (el.type === 'submit' || el.type === 'button')) out.push(['button', el.value]);
    for (const a of ['placeholder', 'title']) if (el.getAttribute(a)) out.push([el.tagName.toLowerCase(), el.getAttribute(a)]);
  }
  return out;
}
"""

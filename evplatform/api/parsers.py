"""The driver API's JSON parser: DRF's, refusing what would otherwise end in a 500.

- Nesting deeper than ``MAX_DEPTH`` (objects and arrays) is 400 ``parse_error``: no request
  of ours needs more than a few levels, and Python's parser overflows its stack
  (RecursionError) at about a thousand.
- A NUL character in any key or string is 400 ``parse_error``: PostgreSQL cannot store or
  compare text containing it.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from rest_framework import parsers
from rest_framework.exceptions import ParseError

MAX_DEPTH = 32


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(_("JSON nested too deeply.")) from None
        _check(data)
        return data


def _check(data) -> None:
    """Raise ParseError for nesting deeper than MAX_DEPTH or a NUL in a key or string."""
    stack = [(data, 1)]  # iterative: the value may be nearly as deep as the parser allows
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                raise ParseError(_("Text may not contain NUL characters."))
        elif isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                raise ParseError(_("JSON nested too deeply."))
            if isinstance(value, dict):
                for key, item in value.items():
                    if "\x00" in key:
                        raise ParseError(_("Text may not contain NUL characters."))
                    stack.append((item, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in value)

"""Operator text (--by, --note) made safe for one-line logs: no forged lines, no escapes."""

from __future__ import annotations


def escape_control(text: str) -> str:
    """Escape every control character (newline, CR, ESC, NUL, DEL, C1) as \\n, \\r or \\xNN.

    Pure; the result never contains a character below 0x20 nor 0x7f-0x9f, so one call writes
    exactly one line. A backslash is doubled so the escaping cannot be faked."""
    out: list[str] = []
    for ch in text:
        code = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif code < 0x20 or 0x7F <= code <= 0x9F or ch in "\u2028\u2029\x85":
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)

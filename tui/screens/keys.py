"""Every key of the screen underneath, with what it does and whether it works right now."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

NAVIGATION = [
    ("↑ ↓", "move in the timeline (the detail follows the selection)"),
    ("enter", "expand or collapse a day or phase"),
]


def key_lines(rows: list[tuple[str, str, str, bool | None]]) -> str:
    """rows: (key, name, what it does, available now: True, None = not now, False = never)."""
    lines = []
    for key, name, what, available in rows:
        if available is False:
            continue
        state = "" if available else "  (not now)"
        lines.append(f"{key:>5}  {name}: {what}{state}")
    lines += [f"{key:>5}  {what}" for key, what in NAVIGATION]
    return "\n".join(lines)


def key_rows(
    bindings: Iterable[Binding | object], available: Callable[[str], bool | None]
) -> list[tuple[str, str, str, bool | None]]:
    """A screen's bindings as rows for key_lines (? itself left out); available(action) says
    whether the key works now."""
    rows = []
    for binding in bindings:
        if not isinstance(binding, Binding) or binding.action.endswith("toggle_keys"):
            continue
        key = binding.key.replace("question_mark", "?").replace(",", " ")
        what = binding.tooltip or binding.description
        rows.append((key, binding.description, what, available(binding.action)))
    return rows


MORE = "↓/pgdn: more keys below · "


class KeysScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,question_mark,q", "close", "Close"),
    ]

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Static("Keys", classes="dialog-title")
            with VerticalScroll(id="keys-list"):
                yield Static(self.text)
            yield Label("esc or ? closes", id="keys-hint", classes="dialog-keys")

    def on_mount(self) -> None:
        scroll = self.query_one("#keys-list", VerticalScroll)
        scroll.focus()
        self.watch(scroll, "scroll_y", lambda _: self._hint(), init=False)
        self.call_after_refresh(self._hint)

    def on_resize(self) -> None:
        self.call_after_refresh(self._hint)

    def _hint(self) -> None:
        """When the list does not fit, say so until its end is in view."""
        scroll = self.query_one("#keys-list", VerticalScroll)
        more = scroll.max_scroll_y > 0 and scroll.scroll_y < scroll.max_scroll_y
        self.query_one("#keys-hint", Label).update((MORE if more else "") + "esc or ? closes")

    def action_close(self) -> None:
        self.dismiss(None)

"""A run's results.md, rendered."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, MarkdownViewer


class MarkdownScreen(Screen):
    BINDINGS: ClassVar = [Binding("escape,m", "app.pop_screen", "Back")]

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self.heading, self.text = title, text

    def compose(self) -> ComposeResult:
        yield Header()
        yield MarkdownViewer(self.text, show_table_of_contents=True)
        yield Footer()

    def on_mount(self) -> None:
        self.title = self.heading

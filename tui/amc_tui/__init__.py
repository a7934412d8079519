"""amc-tui: the terminal dashboard. Reads plain metric events; never imports torch."""

"""Command-line entry points. ``entry`` dispatches; the hot path never imports click."""

"""End-to-end tests' tools: the pinned Claude Code CLI and an Anthropic-shaped test server."""

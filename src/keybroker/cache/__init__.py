"""The shared, encrypted, TTL-aware disk cache (DESIGN section 4)."""

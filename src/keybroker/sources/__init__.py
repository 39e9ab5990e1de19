"""Sources turn a request into a Secret. Each lives in its own module and imports its SDK lazily."""

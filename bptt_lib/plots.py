"""Figure helpers for the chapter's plots (each takes data, returns a matplotlib Figure)."""

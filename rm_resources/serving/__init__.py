"""Serving rewards over HTTP on Ray Serve: request shapes (`protocol`), scorers (`scorers`), the
Serve application (`app`). `rmforge serve` starts it."""

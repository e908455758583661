"""Tools that travel on every disc: standard library only, Python 3.8+."""

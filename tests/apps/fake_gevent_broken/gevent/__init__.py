"""A gevent that cannot be imported, as on a machine without it."""
raise ImportError("No module named 'gevent' (test stand-in)")

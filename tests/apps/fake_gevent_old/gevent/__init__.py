"""A stand-in for a gevent built with its own embedded libev (as pip wheels
are): srv must refuse to share its loop."""

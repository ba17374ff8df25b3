"""srv, a WSGI server written in C.

This package only launches the `srv` executable (`python -m srv ...`).
Applications served by srv that `import srv` get srv's built-in module
instead (sleep, RequestTimeout, WebSocket): the embedded interpreter finds
built-in modules before site-packages.
"""
__version__ = "0.1.0"

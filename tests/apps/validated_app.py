"""routes.app wrapped in wsgiref.validate.validator.

The validator raises AssertionError (which srv turns into a 500 and a logged
traceback) when either the app or the *server* breaks a PEP 3333 rule, e.g.
a non-str environ value, a missing key, wsgi.input lacking a method, or
close() not being called (it warns on stderr then)."""
import sys
import warnings
from wsgiref.validate import validator

import routes

# Make validator warnings visible on stderr (srv's stderr is captured).
warnings.simplefilter("always")


def _showwarning(message, category, filename, lineno, file=None, line=None):
    sys.stderr.write("VALIDATOR-WARNING: %s: %s\n" % (category.__name__, message))
    sys.stderr.flush()


warnings.showwarning = _showwarning

app = validator(routes.app)

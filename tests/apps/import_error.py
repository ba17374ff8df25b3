"""A module that fails at import time."""

raise RuntimeError("import-error-MARKER: this module cannot be imported")

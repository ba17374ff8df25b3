"""A stand-in for a greenlet whose C API is not the one srv was compiled
against: it exports a `greenlet._C_API` capsule, but its table holds other
pointers (here: none).  srv must refuse it in one line, never call into it."""
import ctypes

__version__ = "99.0 (test stand-in)"


class greenlet:
    pass


class GreenletExit(BaseException):
    pass


class error(Exception):
    pass


def getcurrent():
    return None


_table = (ctypes.c_void_p * 64)()
_name = b"greenlet._C_API"
_new = ctypes.pythonapi.PyCapsule_New
_new.restype = ctypes.py_object
_new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
_C_API = _new(ctypes.addressof(_table), _name, None)

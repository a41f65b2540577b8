"""Hook safety: a failing hook is switched off, says so once on stderr, and the run goes on.

Only Exception is caught: KeyboardInterrupt and SystemExit belong to the host and pass through.
"""
import functools
import sys

_disabled = set()
_all_off = False


def enabled(kind):
    return not _all_off and kind not in _disabled


def off(kind):
    """The hot paths' test: the hook `kind` is switched off (or all are)."""
    return _all_off or kind in _disabled


def disable(kind, exc=None):
    if kind in _disabled:
        return
    _disabled.add(kind)
    try:
        why = "%s: %s" % (type(exc).__name__, exc) if exc is not None else "disabled"
        why = why.replace("\n", " ")[:300]
        sys.stderr.write("nantrace: %s hook disabled after an internal error (%s)\n" % (kind, why))
        sys.stderr.flush()
    except Exception:
        pass


def disable_all():
    global _all_off
    _all_off = True


def all_off():
    return _all_off


def reset():
    """For tests."""
    global _all_off
    _disabled.clear()
    _all_off = False


def guarded(kind):
    """Decorator for hook bodies: never raises Exception, returns None when it fails or is off."""
    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            if _all_off or kind in _disabled:
                return None
            try:
                return fn(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 - by design
                disable(kind, e)
                return None
        return wrapper
    return deco

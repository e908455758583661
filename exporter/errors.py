"""Domain errors of the export engine.  Each carries a message a person can act on."""


class ExportError(Exception):
    """Base class of the engine's errors."""


class IllegalTransition(ExportError):
    pass


# What went wrong with a source, as data (the values of ItemIssue.Kind):
# never guessed from the words of a reason, which may hold any path.
MISMATCH = "checksum_mismatch"
MISSING = "missing_object"
UNREADABLE = "unreadable"


class SourceMismatch(ExportError):
    """Source bytes did not match their recorded sha256 (or could not be read).

    ``problems`` maps the item id (or path) to a one-line reason, ``kinds``
    the same keys to :data:`MISMATCH`, :data:`MISSING` or :data:`UNREADABLE`
    (a key not in it: :data:`MISMATCH`).
    """

    def __init__(self, problems: dict, kinds: dict | None = None):
        self.problems = problems
        self.kinds = dict(kinds or {})
        lines = "; ".join(f"{k}: {v}" for k, v in sorted(problems.items(), key=lambda kv: str(kv[0])))
        super().__init__(f"source bytes failed their checksum check: {lines}")


class ImageTooLarge(ExportError):
    pass


class StorageUnavailable(ExportError):
    """Object storage could not be reached, timed out or kept sending bad
    bytes: a transient failure, retried later with backoff."""

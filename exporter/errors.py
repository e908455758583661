"""Domain errors of the export engine.  Each carries a message a person can act on."""


class ExportError(Exception):
    """Base class of the engine's errors."""


class IllegalTransition(ExportError):
    pass


class SourceMismatch(ExportError):
    """Source bytes did not match their recorded sha256 (or could not be read).

    ``problems`` maps the item id (or path) to a one-line reason.
    """

    def __init__(self, problems: dict):
        self.problems = problems
        lines = "; ".join(f"{k}: {v}" for k, v in sorted(problems.items(), key=lambda kv: str(kv[0])))
        super().__init__(f"source bytes failed their checksum check: {lines}")


class ImageTooLarge(ExportError):
    pass


class StorageUnavailable(ExportError):
    """Object storage could not be reached, timed out or kept sending bad
    bytes: a transient failure, retried later with backoff."""

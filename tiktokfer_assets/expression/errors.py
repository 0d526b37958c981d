"""The package's one error type (no heavy imports, so the CLI can catch it cheaply)."""


class ExpressionInputError(ValueError):
    """An image, release or model that cannot be used (the message names it)."""

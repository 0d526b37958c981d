"""Reading resource fields that may be ``EnvVar``s, for every resource that talks to a server."""


def config_value(value):
    """A resource field's value, or the value of the environment variable an ``EnvVar`` field names.

    Inside a run Dagster has resolved ``EnvVar`` fields already; this covers direct use
    of a resource outside a run (the CLI, scripts, tests).
    """
    return value.get_value() if callable(getattr(value, "get_value", None)) else value  # EnvVar, EnvVar.int

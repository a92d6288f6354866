"""segdil: does a full-resolution dilated network keep the small objects that pooling loses?"""

__version__ = "0.1.0"


def __getattr__(name: str):
    # the Python API (docs/api.md), imported on first use so that `import segdil` stays light
    if name in ("load", "evaluate", "Model"):
        from segdil import api

        return getattr(api, name)
    raise AttributeError(f"module 'segdil' has no attribute {name!r}")


__all__ = ["Model", "__version__", "evaluate", "load"]

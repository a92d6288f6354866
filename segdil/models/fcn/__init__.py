from segdil.models.fcn.model import FCN

__all__ = ["FCN"]

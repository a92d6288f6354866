from segdil.models.hdc.model import HDCNet

__all__ = ["HDCNet"]

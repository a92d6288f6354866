from segdil.models.hdc_context.model import HDCContextNet

__all__ = ["HDCContextNet"]

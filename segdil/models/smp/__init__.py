from segdil.models.smp.model import SMPModel

__all__ = ["SMPModel"]

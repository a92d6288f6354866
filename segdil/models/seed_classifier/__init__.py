from segdil.models.seed_classifier.model import SeedClassifier

__all__ = ["SeedClassifier"]

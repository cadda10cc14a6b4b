"""Fine-tune a static model for text classification with a scikit-learn estimator.

Training needs the ``train`` extra (torch, scikit-learn, tqdm); the exported pipeline
(:class:`static_model.pipeline.StaticPipeline`) runs with numpy only.
"""

from distill.classifier.estimator import InvalidParameterError, StaticModelClassifier

__all__ = ["InvalidParameterError", "StaticModelClassifier"]

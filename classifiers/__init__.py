"""Classifiers of the fine-filtering stage (training, evaluation, model handlers)."""

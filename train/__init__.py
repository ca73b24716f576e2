"""Training and evaluation data for the learned turn signal (scikit-learn at training time only)."""

"""Shipped weights of the learned turn signal and their training manifests (`make train-signal`)."""

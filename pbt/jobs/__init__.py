"""Kubernetes jobs the product renders and submits (the training PyTorchJob)."""

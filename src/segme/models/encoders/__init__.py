"""Encoders shared by the model families, with their ImageNet weights for training."""

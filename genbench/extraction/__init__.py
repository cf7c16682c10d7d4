"""Images to features: the batch loop (engine), the feature cache, shards under torchrun, device choice."""

"""Pre-training: the trainer loop, optimiser and schedule, checkpoints, distributed set-up, logs."""

"""Engine: compose configs, compile pipelines to DVC stages, run them. Talks to Hydra and DVC."""

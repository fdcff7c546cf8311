"""Production artifacts: the bundle, prediction, serving and monitoring."""

"""Core: config schemas, errors, artifact formats and the console. Imports nothing above it."""

"""The `lrens` command."""

"""The REST API (/api/v1/): one more entrance to the door (docs/api.md)."""

"""The bench's orchestration: runs case scripts in fresh processes and tabulates figures."""

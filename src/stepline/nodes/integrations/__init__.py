"""The apps the `integration` node kind reaches, one module each (Slack, email, webhook).

Each app module has a settings model (how to reach the app: the `slack`, `email` or
`webhook` block of the node's config), `recorded_settings` (those settings as the step
records them, credentials masked) and `perform` (one action; returns the app's answer, or
raises a NodeError made by `common.failure`).
"""

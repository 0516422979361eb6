"""Secrets: values a workflow reads as `{{ secrets.NAME }}` that never reach the record.

`names` (what a name and a value may be), `cipher` (encryption at rest and its key),
`vault` (setting, listing, deleting and reading an organization's secrets), `source`
(where a run's secret values come from) and `redact` (masking them in what is recorded).
Nothing is imported here, so that `stepline.spec` can use `names` without the store.
"""

"""The runs repository: one class, its verbs grouped by topic in the modules beside it."""

from __future__ import annotations

from stepline.store.runs.cancel import RunCancels
from stepline.store.runs.control import RunControl
from stepline.store.runs.lifecycle import RunLifecycle
from stepline.store.runs.listings import RunListings


class RunRepository(RunLifecycle, RunListings, RunCancels, RunControl):
    """Runs: their life (create, claim, renew_lease, finish, get, list), the API's
    listings (page, window, summary, head), cancelling (request_cancel, with its child
    runs), and control (pause, retry, replay, reviews, child runs).

    Each verb is one transaction of the store's writer, and one that changes a run also
    does what must change with it in that transaction (its event, its steps on cancel,
    its parent woken on finish), calling the shared SQL helpers of `steps` and `events`.
    """

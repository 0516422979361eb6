"""The Python SDK of the stepline REST API: `Client`, and `AsyncClient` for asyncio.

from stepline import Client

with Client() as client:  # STEPLINE_SERVER / STEPLINE_API_KEY or the saved credentials
    workflow = client.workflows.upload("examples/order-triage.yaml")
    run = client.runs.create(workflow.id, {"amount": 700, "customer": "Ada"}, wait=True)
    for step in client.runs.steps.list(workflow.id, run.id, include_io=False):
        print(step.step_id, step.status)

Both faces are one implementation: `_api` describes each request as data, `_flows` does
everything over HTTP once (retries, errors, streams, pages, `wait`) without doing I/O, and
`_drivers` performs it with httpx's sync or async client. Errors are the kinds of
`stepline.errors` (see `stepline.sdk.errors`).
"""

from stepline.sdk.async_client import AsyncClient, AsyncEventStream, AsyncStepStream
from stepline.sdk.client import Client, EventStream, StepStream
from stepline.sdk.errors import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    ErrorDetail,
    MisconfiguredError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    SteplineError,
    TransportError,
    UnavailableError,
    ValidationError,
)
from stepline.sdk.models import (
    Collection,
    CollectionSource,
    Event,
    File,
    Page,
    Review,
    ReviewResult,
    Run,
    RunData,
    RunSummary,
    SearchHit,
    SearchResults,
    Secret,
    Step,
    StepChange,
    ValidationIssue,
    ValidationResult,
    Version,
    Workflow,
)
from stepline.sdk.pagination import AsyncPageIterator, PageIterator

__all__ = [
    "ApiError",
    "AsyncClient",
    "AsyncEventStream",
    "AsyncPageIterator",
    "AsyncStepStream",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "Collection",
    "CollectionSource",
    "ConfigurationError",
    "ConflictError",
    "ErrorDetail",
    "Event",
    "EventStream",
    "File",
    "MisconfiguredError",
    "NotFoundError",
    "Page",
    "PageIterator",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "Review",
    "ReviewResult",
    "Run",
    "RunData",
    "RunSummary",
    "SearchHit",
    "SearchResults",
    "Secret",
    "ServerError",
    "Step",
    "StepChange",
    "StepStream",
    "SteplineError",
    "TransportError",
    "UnavailableError",
    "ValidationError",
    "ValidationIssue",
    "ValidationResult",
    "Version",
    "Workflow",
]

"""The REST API: FastAPI app, auth, errors, and the routers under /v1."""

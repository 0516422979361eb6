"""The REST API routers, one module per resource."""

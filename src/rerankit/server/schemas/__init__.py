"""Request and response bodies, one module per dialect (pydantic models; their JSON schema is the OpenAPI doc)."""

"""The HTTP edge: the ASGI app, its request handlers, the SSE response and the error envelope."""

"""The server: the subject of the experiments. A Starlette app on uvicorn, its configuration, request parsing,
the one table mapping typed errors to HTTP statuses, metrics, and a runner per serving mode.

Imports the tutor only to build the agent (lazily, so importing the app stays cheap); never imports `miniserve.lab`.
The batching policies live side by side in `batching/`.
"""

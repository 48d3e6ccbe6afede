"""segme over HTTP: ``create_app()`` builds the FastAPI app that ``segme serve`` runs.

    from segme.serve import create_app
    app = create_app("model.onnx", workers=2)  # then: uvicorn.run(app)

Needs the ``serve`` extra: ``pip install "segme[serve]"``.
"""

from __future__ import annotations

try:
    import fastapi  # noqa: F401
    import fastapi_offline  # noqa: F401
    import python_multipart  # noqa: F401
except ImportError as e:
    raise ImportError(f"the HTTP server needs FastAPI, fastapi-offline and python-multipart "
                      f"({e.name} is missing): "
                      'pip install "segme[serve]"') from None

from segme.serve.app import create_app

__all__ = ["create_app"]

"""The FastAPI app the tutorial runs with ``uvicorn api:app --reload``.

The tutorial does not show this file; it includes the router under ``/celery``, the prefix its
``info`` message points to.
"""

from fastapi import FastAPI
from mycelery import celery_router

app = FastAPI()
app.include_router(celery_router, prefix="/celery")

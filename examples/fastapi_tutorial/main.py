# main.py
from fastapi import FastAPI
from celery_app.tasks import add # Celery task imported
import logging

app = FastAPI()

logging.basicConfig(level=logging.INFO)
logger = logging.getLogger(__name__)

@app.on_event("startup")
async def startup_event():
    logger.info("FastAPI application starting up.")

@app.get("/")
def read_root():
    return {"Hello": "World"}

# We're sending the task to celery here
@app.post("/add")
def add_task(x: int, y: int):
    task = add.delay(x, y)
    return {"task_id": task.id}

import pymysql
pymysql.version_info = (2, 2, 7, "final", 0)
pymysql.install_as_MySQLdb()
# mystore/__init__.py
# To make Django load the Celery app automatically at startup, ensure your mystore/__init__.py file imports the Celery app. It should look like this:
from .celery import app as celery_app
__all__ = ('celery_app',)

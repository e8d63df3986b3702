"""Framework integrations: ``celeriac.contrib.flask``, ``.fastapi`` and ``.django``.

Each module imports its framework, so importing one never pulls in the others.
"""

"""The worker: pools that fetch, run and settle tasks, under a supervisor."""

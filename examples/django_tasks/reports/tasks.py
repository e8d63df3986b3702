"""Tasks declared with Django's task framework; the TASKS setting sends them to celeriac."""

try:
    from django.tasks import task
except ImportError:  # Django < 6: the backport
    from django_tasks import task


@task
def build_report(size):
    return {"rows": list(range(size)), "total": sum(range(size))}


@task(takes_context=True)
def attempt_number(context):
    return context.attempt


@task
def broken_report():
    raise ValueError("no data for this report")

import logging

from django.apps import AppConfig


class ExporterConfig(AppConfig):
    name = "exporter"
    verbose_name = "Export engine"

    def ready(self) -> None:
        # django-q2 workers report what they do, and each new worker first
        # removes what killed workers left in the build area.
        from django_q.signals import post_spawn, pre_execute

        from exporter import cleanup, workers

        def on_spawn(sender, proc_name, **kwargs):
            try:
                cleanup.clean_leftovers()
            except Exception:  # a worker must start even if the clean-up cannot run now
                logging.getLogger(__name__).exception("cleaning the build area failed")
            workers.beat("")

        def on_execute(sender, func, task, **kwargs):
            workers.beat(str(task.get("name") or task.get("func"))[:200])

        post_spawn.connect(on_spawn, dispatch_uid="exporter.cleanup_on_spawn", weak=False)
        pre_execute.connect(on_execute, dispatch_uid="exporter.beat_on_execute", weak=False)

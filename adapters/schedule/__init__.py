"""Schedules: SAM ``Schedule`` (EventBridge rules) and ``ScheduleV2`` (EventBridge
Scheduler) events.

- :mod:`.expressions` parses AWS's ``rate``/``cron``/``at`` and computes ticks (pure);
- :mod:`.spec` checks a schedule's properties at template load and models it;
- :mod:`.events` builds what a tick delivers (EventBridge's scheduled event or Input);
- :mod:`.plan` decides which ticks to fire now (catch-up policy, flexible windows; pure);
- :mod:`.scheduler` claims each tick in Redis and publishes it, from any number of replicas;
- :mod:`.cli` is ``lambdabus adapter schedule`` (and ``--fire`` to run a tick now).
"""

"""Step Functions (Amazon States Language) on the bus: engine, durable executor, API.

- ``definition``: load and validate a definition; refusals name the state and field.
- ``engine`` (+ ``transition``, ``events``, ``retry_catch``, ``states``, ``fanout``,
  ``dataflow``, ``paths``, ``intrinsics``, ``choice``, ``waits``, ``jsonata_eval``): a
  pure, deterministic transition function over one JSON document per execution. Map
  iterations and Parallel branches are child frames in that document; Wait and Retry
  back-off are timers; nothing sleeps.
- ``executor`` (+ ``work_entries``, ``execution_update``, ``timer_pump``) + ``store`` +
  ``commands``: executions live in Redis. Every input
  (start, a task's result, a due timer, SendTask*, StopExecution) is an entry on the
  stack's work stream, read through one consumer group by any number of executors. A
  transition is committed (WATCH/MULTI: document, history, outbox of commands) before
  its commands run; the outbox is emptied in the same pipeline that carries the
  commands out, so a killed executor's work is redone by another without losing a
  command, and every command is safe to repeat (an invoke is sent once per token).
  Tasks are synchronous invocations whose ``reply_to`` is the work stream itself, so a
  result that arrives while no executor runs waits there.
- ``api``: the ``AWSStepFunctions.*`` JSON API on the edge; ``cli``: ``lambdabus sfn``.
- ``machines``/``starters``: the template's state machines, and their Events routed
  to a built-in starter function.

Deviations from AWS, on purpose: only Lambda tasks run (function ARN/name,
``lambda:invoke`` and ``.waitForTaskToken``); distributed Map, activities and other
service integrations are refused at load. Task tokens are ``<execution id>.<n>``,
plus a random secret part for ``.waitForTaskToken`` tasks (the only ones SendTask*
accepts). A Task without TimeoutSeconds waits up to a year, not forever. An
execution reaching 25,000 history events fails with ``States.Runtime`` (AWS fails
it too; its exact error name for this quota is not documented); one transition runs
at most 500 states and continues through a ``continue`` entry on the work stream.
A work entry delivered more than ten times is logged, counted and dropped.
"""

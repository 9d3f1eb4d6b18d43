"""The demo's stack, declared in Python (SAM templates arrive with the stack loader)."""

from bus.spec import FunctionSpec, RetryPolicy, Stack, Trigger

FAST_RETRY = RetryPolicy(max_retry_attempts=2, backoff_base_s=0.2, backoff_cap_s=1.0)

STACK = Stack(
    "demo",
    {
        "greet": FunctionSpec("greet", "functions.examples.greet"),
        "word_count": FunctionSpec(
            "word_count",
            "functions.examples.word_count",
            triggers={
                "Queue": Trigger("Queue", batch_size=10, batching_window_s=0.2, shape="records")
            },
        ),
        "flaky": FunctionSpec("flaky", "functions.examples.flaky", retry=FAST_RETRY),
        "always_fails": FunctionSpec(
            "always_fails",
            "functions.examples.always_fails",
            retry=FAST_RETRY,
            on_failure="on_failure",
        ),
        "on_failure": FunctionSpec("on_failure", "functions.examples.on_failure"),
    },
)

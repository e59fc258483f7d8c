"""Handlers the host tests invoke through the official awslambdaric."""
import json
import os
import subprocess
import sys
import threading
import time

COUNT = 0  # module level: survives between invocations of a warm environment


def handler(event, context):
    global COUNT
    COUNT += 1
    started = time.monotonic()
    print(f"handling {context.aws_request_id} #{COUNT}")
    print("to stderr", file=sys.stderr)
    if isinstance(event, dict) and event.get("sleep"):
        time.sleep(event["sleep"])
    return {
        "count": COUNT,
        "event": event,
        "function_name": context.function_name,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "invoked_function_arn": context.invoked_function_arn,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "log_stream": context.log_stream_name,
        "client_context": getattr(getattr(context, "client_context", None), "custom", None),
        "env": {k: os.environ.get(k) for k in ["AWS_LAMBDA_FUNCTION_NAME", "AWS_REGION", "_HANDLER", "LAMBDA_TASK_ROOT",
                                                 "AWS_EXECUTION_ENV", "AWS_LAMBDA_RUNTIME_API", "GREETING", "TZ",
                                                 "_X_AMZN_TRACE_ID", "AWS_LAMBDA_FUNCTION_VERSION"]},
        "uid": os.getuid(),
        "handler_ms": (time.monotonic() - started) * 1000,
    }


def fail(event, context):
    raise Exception("Handler fails")


def sleep(event, context):
    time.sleep(event.get("seconds", 60))
    return "slept"


def children(event, context):
    # Background processes, one of them escaping into its own session, then a hang.
    subprocess.Popen(["sleep", "300"])
    subprocess.Popen(["sh", "-c", "setsid sleep 300 &"])
    time.sleep(60)


def oom(event, context):
    blocks = []
    while True:
        blocks.append(bytearray(8 * 1024 * 1024))


def exit(event, context):
    sys.stdout.flush()
    os._exit(event.get("code", 7))


def big(event, context):
    return "x" * (7 * 1024 * 1024)


def spin_in_background(event, context):
    # A thread that would burn CPU between invocations if the environment were not frozen.
    def spin():
        while True:
            pass
    threading.Thread(target=spin, daemon=True).start()
    return "spinning"

import time

time.sleep(float(open("/var/task/init_seconds").read()))


def handler(event, context):
    return "initialized"

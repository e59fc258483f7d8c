import module_that_does_not_exist  # noqa: F401  (an init error: Runtime.ImportModuleError)


def handler(event, context):
    return "never"

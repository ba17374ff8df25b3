"""`app` exists but is not callable."""

app = 42
also_not_callable = "a string"


def make_not_callable():
    return None

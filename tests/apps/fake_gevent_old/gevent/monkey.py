def patch_all(*args, **kwargs):
    return None

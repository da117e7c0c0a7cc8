"""Stable model ids. A bitstream stores these ids, never a position in a dict."""
_MODELS: dict = {}


def register_model(name: str):
    def wrap(cls):
        if name in _MODELS:
            raise ValueError(f"model id {name!r} registered twice")
        cls.arch = name
        _MODELS[name] = cls
        return cls
    return wrap


def model_class(name: str):
    if name not in _MODELS:
        raise KeyError(name)
    return _MODELS[name]


def model_ids() -> list[str]:
    return sorted(_MODELS)

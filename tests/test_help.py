"""Every flag of every entry point has help text."""
import argparse

import pytest


class _Stop(Exception):
    pass


ENTRY_POINTS = {
    "oval-encode": ("oval.cli", "encode_main", ["x", "-o", "y.oval"]),
    "oval-decode": ("oval.cli", "decode_main", ["x.oval", "-o", "y.mkv"]),
    "oval.train": ("oval.train", "main", ["--data", "x", "--out", "y"]),
    "oval.online": ("oval.online", "main", ["--source", "x", "-o", "y.oval"]),
    "oval.export": ("oval.export.__main__", "main", ["default", "--out", "y"]),
    "oval.sweep": ("oval.sweep", "main", ["x.yaml"]),
    "oval.doctor": ("oval.doctor", "main", []),
    "oval.corpus": ("oval.corpus.__main__", "main", ["info", "x"]),
}


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_every_flag_has_help(name, monkeypatch):
    module_name, fn, argv = ENTRY_POINTS[name]
    seen = []

    def capture(self, args=None, namespace=None):
        seen.append(self)
        raise _Stop

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", capture)
    module = __import__(module_name, fromlist=[fn])
    with pytest.raises(_Stop):
        getattr(module, fn)(argv)
    parsers = list(seen)
    for p in seen:  # sub-commands too
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers += list(action.choices.values())
    missing = [f"{p.prog}: {a.option_strings or a.dest}" for p in parsers for a in p._actions
               if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)) and not a.help]
    assert not missing, missing

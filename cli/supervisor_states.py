"""The states of a supervisord's processes, asked over its control socket from this process.

``supervisorctl status`` is a Python process of its own (about 0.15 s of CPU on the bench box):
polled every 50 ms while a stack starts, it took most of a core from the seven processes
importing at the same moment. The same question over XML-RPC on the unix socket costs a few
milliseconds. The socket is the one the conf's ``[supervisorctl] serverurl`` names, read by
supervisor's own option parser (``%(here)s`` and ``%(ENV_X)s`` as supervisorctl expands them).
"""

from __future__ import annotations

import configparser
import http.client
import xmlrpc.client
from pathlib import Path
from typing import Any

from supervisor.options import ClientOptions
from supervisor.xmlrpc import SupervisorTransport


def server_url(conf: Path) -> str:
    """The ``serverurl`` supervisorctl would use for ``conf``."""
    options = ClientOptions()
    options.realize(args=["-c", str(conf)], doc="")
    return str(options.serverurl)


def stop_order(conf: Path) -> list[str]:
    """The programs of ``conf`` in supervisord's shutdown order: the highest ``priority`` first
    (the persister last). ``supervisorctl stop`` of them in this order does what supervisord's
    own shutdown does, but supervisord looks at its stopping processes about once a second
    (7-8 s a stack) and ``stop`` waits for each exit (~1 s in all)."""
    parser = configparser.RawConfigParser()
    parser.read(conf)
    group_of = {  # a program in a [group:x] is named x:program
        program.strip(): section.split(":", 1)[1]
        for section in parser.sections()
        if section.startswith("group:")
        for program in parser.get(section, "programs", fallback="").split(",")
    }
    programs = [
        (parser.getint(section, "priority", fallback=999), section.split(":", 1)[1])
        for section in parser.sections()
        if section.startswith("program:")
    ]
    return [
        f"{group_of[name]}:{name}" if name in group_of else name
        for _, name in sorted(programs, reverse=True)
    ]


class SupervisorStates:
    """``states()``: each process's state by the name ``supervisorctl status`` shows it
    (``group:name`` when they differ); empty while the socket does not answer."""

    def __init__(self, conf: Path) -> None:
        self.conf = conf
        self._proxy: Any = None

    def states(self) -> dict[str, str]:
        try:
            if self._proxy is None:
                url = server_url(self.conf)
                transport = SupervisorTransport(None, None, url)
                self._proxy = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)
            infos = self._proxy.supervisor.getAllProcessInfo()
        except (OSError, http.client.HTTPException, xmlrpc.client.Error, ValueError):
            self._proxy = None  # its connection is spent: a new one next time
            return {}  # not listening yet, or gone
        out: dict[str, str] = {}
        for info in infos:
            name, group = str(info["name"]), str(info["group"])
            out[name if group == name else f"{group}:{name}"] = str(info["statename"])
        return out

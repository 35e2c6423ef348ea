"""The `trading` entry point imports only the module of the command it runs; the map it uses must name
every command each module registers, or a command would be missing when run on its own."""

from __future__ import annotations

import subprocess
import sys

import typer
from typer.main import get_group

from hftops.cli.main import COMMAND_MODULES, MODULE_ORDER, _modules_for, build_app


def _names(app: typer.Typer) -> set[str]:
    return set(get_group(app).commands)


def test_every_module_registers_exactly_the_commands_the_map_gives_it() -> None:
    for module in MODULE_ORDER:
        expected = {cmd for cmd, mod in COMMAND_MODULES.items() if mod == module}
        assert _names(build_app((module,))) == expected, module
    assert _names(build_app()) == set(COMMAND_MODULES)


def test_the_command_line_picks_its_module() -> None:
    assert _modules_for(["stop", "--json"]) == ("control_cmds",)
    assert _modules_for(["venue", "fault", "drop"]) == ("venue_cmds",)
    assert _modules_for(["--help"]) == MODULE_ORDER
    assert _modules_for([]) == MODULE_ORDER
    assert _modules_for(["no-such-command"]) == MODULE_ORDER


def test_stop_does_not_import_the_other_groups() -> None:
    probe = (
        "import sys; sys.argv = ['trading', 'stop', '--help']\n"
        "from hftops.cli import main\n"
        "try:\n    main.main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('hftops.cli.', 'redis.asyncio'))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    loaded = out.stdout.strip().splitlines()[-1]
    assert "hftops.cli.control_cmds" in loaded
    for other in ("flatten_cmds", "trading_cmds", "autonomy_cmds", "venue_cmds", "redis.asyncio"):
        assert other not in loaded, loaded

"""Where a configuration keeps its data, by the loader's own rule, without validating the rest of it.

`trading stop` reaches the running supervisor's control socket through this: validating the whole schema
first costs about 0.2 s on an idle machine and close to a second on one saturated by 20,000 msg/s, all of
it inside the stop's budget. `load_config` resolves the data dir with the same `resolve_data_dir`, so the
two cannot disagree. Anything unusual gives None and the caller loads the full config, which names the
problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

DEFAULT_DATA_DIR = Path("./var")


def resolve_data_dir(data_dir: Path, config_file: str | Path | None, set_in_file: bool) -> Path:
    """Absolute data dir: a relative one is taken from the config file's directory when the file sets
    it, else from the working directory."""
    if data_dir.is_absolute():
        return data_dir
    base = Path(config_file).resolve().parent if config_file and set_in_file else Path.cwd()
    return (base / data_dir).resolve()


def locate_data_dir(environ: Mapping[str, str]) -> Path | None:
    """The data dir of the configuration HFT_CONFIG / HFT_DATA_DIR name, or None when it is not plain."""
    config_file = environ.get("HFT_CONFIG")
    raw: object = {}
    if config_file:
        import yaml  # only when there is a file: `trading stop` with HFT_DATA_DIR alone skips it

        try:
            raw = yaml.safe_load(Path(config_file).read_text()) or {}
        except (OSError, yaml.YAMLError):
            return None
    if not isinstance(raw, dict):
        return None
    value = environ.get("HFT_DATA_DIR", raw.get("data_dir", DEFAULT_DATA_DIR))
    if not isinstance(value, str | Path) or not str(value):
        return None
    return resolve_data_dir(Path(value), config_file, "data_dir" in raw)

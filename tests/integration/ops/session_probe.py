"""A strategy the session tests drive by hand: it sends what the test scripts at the next book update and
keeps every rejection it hears."""

from __future__ import annotations

from hftops.engine.strategy import Strategy
from hftops.model.orders import Bbo, GateResult, Intent


class SessionProbe(Strategy):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.script: list[Intent] = []
        self.rejections: list[tuple[Intent, GateResult]] = []

    def on_bbo(self, bbo: Bbo) -> list[Intent]:
        script, self.script = self.script, []
        return script

    def on_reject(self, intent: Intent, result: GateResult) -> list[Intent]:
        self.rejections.append((intent, result))
        return []

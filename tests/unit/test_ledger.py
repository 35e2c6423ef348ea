"""Ledger maths with plain-data sources: balance, holes, duplicates, pending/WAL/DLQ coverage, strays."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hftops.config.schema import Config
from hftops.pipeline.intervals import IdRanges
from hftops.pipeline.ledger import (
    LedgerUnavailable,
    Published,
    SourceUnavailable,
    Stored,
    compute_ledger,
    compute_ledger_until_balanced,
)

KEY = "sim:BTCUSDT"
CONFIG = Config()


def r(*pairs: tuple[int, int]) -> IdRanges:
    return IdRanges(pairs)


@dataclass
class PlainSources:
    published_: dict[str, Published]
    stored_: dict[str, Stored] = field(default_factory=dict)
    pending_: dict[str, IdRanges] = field(default_factory=dict)
    wal_: dict[str, IdRanges] = field(default_factory=dict)
    dlq_: dict[str, IdRanges] = field(default_factory=dict)
    later_published: dict[str, Published] | None = None
    down: set[str] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)

    def _check(self, name: str) -> None:
        self.calls.append(name)
        if name in self.down:
            raise SourceUnavailable(name, f"{name} is down; start it")

    def published(self) -> dict[str, Published]:
        first_call = "published" not in self.calls
        self._check("published")
        if not first_call and self.later_published is not None:
            return self.later_published
        return self.published_

    def settle(self, published: Mapping[str, Published]) -> None:
        self.calls.append("settle")

    def pending(self) -> dict[str, IdRanges]:
        self._check("pending")
        return self.pending_

    def wal(self) -> dict[str, IdRanges]:
        self._check("wal")
        return self.wal_

    def stored(self) -> dict[str, Stored]:
        self._check("stored")
        return self.stored_

    def dlq(self) -> dict[str, IdRanges]:
        self._check("dlq")
        return self.dlq_


def test_balanced_when_every_id_is_stored_exactly_once() -> None:
    sources = PlainSources({KEY: Published(1, 1000)}, stored_={KEY: Stored(r((1, 1000)))})
    ledger = compute_ledger(CONFIG, sources)
    assert ledger.balanced and ledger.exit_code == 0
    out = ledger.to_dict()
    assert out["balanced"] is True
    sym = out["symbols"][KEY]
    assert (sym["published"], sym["stored"], sym["missing"], sym["duplicates"]) == (1000, 1000, 0, 0)
    assert sym["missing_ranges"] == []
    assert set(out["totals"]) >= {
        "published",
        "stored",
        "duplicates",
        "missing",
        "missing_ranges",
        "pending",
        "wal",
        "dlq",
    }
    assert ledger.summary_line() == "ledger balanced"


def test_reads_in_the_order_that_cannot_invent_a_missing_id() -> None:
    sources = PlainSources({KEY: Published(1, 10)}, stored_={KEY: Stored(r((1, 10)))})
    compute_ledger(CONFIG, sources)
    assert sources.calls == ["published", "settle", "pending", "wal", "stored", "dlq", "pending", "published"]


def test_missing_ranges_are_named() -> None:
    sources = PlainSources({KEY: Published(1, 2000)}, stored_={KEY: Stored(r((1, 1199), (1251, 1999)))})
    ledger = compute_ledger(CONFIG, sources)
    sym = ledger.to_dict()["symbols"][KEY]
    assert sym["missing"] == 52
    assert sym["missing_ranges"] == [[1200, 1250], [2000, 2000]]
    assert ledger.to_dict()["totals"]["missing_ranges"] == [[KEY, 1200, 1250], [KEY, 2000, 2000]]
    assert not ledger.balanced and ledger.exit_code == 1
    assert ledger.summary_line() == "ledger NOT balanced: BTCUSDT missing 1200-1250, 2000 (52 ids)"


def test_duplicates_unbalance_the_ledger() -> None:
    sources = PlainSources({KEY: Published(1, 10)}, stored_={KEY: Stored(r((1, 10)), duplicates=3)})
    ledger = compute_ledger(CONFIG, sources)
    assert not ledger.balanced and ledger.exit_code == 1
    assert ledger.to_dict()["symbols"][KEY]["duplicates"] == 3
    assert "BTCUSDT 3 duplicates" in ledger.summary_line()


def test_unmerged_duplicates_alone_are_reported_but_balance() -> None:
    sources = PlainSources({KEY: Published(1, 10)}, stored_={KEY: Stored(r((1, 10)), raw_duplicates=4)})
    ledger = compute_ledger(CONFIG, sources)
    assert ledger.balanced
    assert ledger.to_dict()["symbols"][KEY]["unmerged_duplicates"] == 4


def test_pending_wal_and_dlq_cover_what_is_not_stored_and_add_up() -> None:
    sources = PlainSources(
        {KEY: Published(1, 100)},
        stored_={KEY: Stored(r((1, 60)))},
        wal_={KEY: r((50, 80))},  # 50-60 already stored (replayed, not yet archived): counted as stored
        pending_={KEY: r((75, 95))},  # 75-80 also in the WAL: counted once, as WAL
        dlq_={KEY: r((90, 100))},
    )
    ledger = compute_ledger(CONFIG, sources)
    sym = ledger.to_dict()["symbols"][KEY]
    assert ledger.balanced
    assert (sym["stored"], sym["wal"], sym["pending"], sym["dlq"]) == (60, 20, 15, 5)
    assert sym["published"] == sym["stored"] + sym["wal"] + sym["pending"] + sym["dlq"]


def test_ids_outside_published_are_extra_unless_published_meanwhile() -> None:
    sources = PlainSources(
        {KEY: Published(1, 100)},
        stored_={KEY: Stored(r((1, 120)))},
        pending_={KEY: r((121, 130), (500, 501))},
        later_published={KEY: Published(1, 130)},
    )
    ledger = compute_ledger(CONFIG, sources)
    sym = ledger.to_dict()["symbols"][KEY]
    assert sym["published"] == 100 and sym["stored"] == 100
    assert sym["in_flight"] == 30  # 101-130: published during the read, judged next time
    assert sym["extra"] == 2 and sym["extra_ranges"] == [[500, 501]]
    assert not ledger.balanced
    assert "BTCUSDT holds 2 ids never published (500-501)" in ledger.summary_line()


def test_ids_below_first_id_are_extra() -> None:
    sources = PlainSources({KEY: Published(10, 20)}, stored_={KEY: Stored(r((5, 20)))})
    sym = compute_ledger(CONFIG, sources).to_dict()["symbols"][KEY]
    assert sym["extra"] == 5 and sym["stored"] == 11 and sym["missing"] == 0


def test_dead_letters_outside_published_do_not_unbalance() -> None:
    # a malformed frame can carry an id the venue never published; it is refused, not stored
    sources = PlainSources({KEY: Published(1, 10)}, stored_={KEY: Stored(r((1, 10)))}, dlq_={KEY: r((99, 99))})
    assert compute_ledger(CONFIG, sources).balanced


def test_nothing_published_nothing_held_balances() -> None:
    sources = PlainSources({KEY: Published(1, 0)})
    ledger = compute_ledger(CONFIG, sources)
    assert ledger.balanced
    assert ledger.to_dict()["symbols"][KEY]["published"] == 0


def test_unknown_first_id_starts_at_the_first_id_held() -> None:
    # a real exchange: only the newest id is known
    sources = PlainSources(
        {KEY: Published(None, 1000)}, stored_={KEY: Stored(r((400, 900)))}, pending_={KEY: r((901, 1000))}
    )
    sym = compute_ledger(CONFIG, sources).to_dict()["symbols"][KEY]
    assert (sym["published"], sym["stored"], sym["pending"], sym["missing"]) == (601, 501, 100, 0)


def test_pending_is_the_union_of_both_stream_reads() -> None:
    class Moving(PlainSources):
        reads = 0

        def pending(self) -> dict[str, IdRanges]:
            self._check("pending")
            self.reads += 1
            return {KEY: r((91, 95))} if self.reads == 1 else {KEY: r((96, 100))}

    sources = Moving({KEY: Published(1, 100)}, stored_={KEY: Stored(r((1, 90)))})
    assert compute_ledger(CONFIG, sources).balanced


def test_an_unreadable_side_source_is_unknown_exit_2() -> None:
    sources = PlainSources({KEY: Published(1, 10)}, stored_={KEY: Stored(r((1, 10)))}, down={"wal"})
    ledger = compute_ledger(CONFIG, sources)
    assert not ledger.balanced and ledger.exit_code == 2
    assert ledger.to_dict()["unknown"] == {"wal": "wal is down; start it"}
    assert ledger.summary_line().startswith("ledger NOT balanced: wal unknown (wal is down; start it)")


@pytest.mark.parametrize("source", ["published", "stored"])
def test_without_published_or_stored_there_is_no_ledger(source: str) -> None:
    sources = PlainSources({KEY: Published(1, 10)}, down={source})
    with pytest.raises(LedgerUnavailable) as info:
        compute_ledger(CONFIG, sources)
    assert source in info.value.unknown


def test_wait_re_evaluates_until_balanced() -> None:
    now = [0.0]

    class Draining(PlainSources):
        def stored(self) -> dict[str, Stored]:
            self._check("stored")
            return {KEY: Stored(r((1, min(100, int(now[0] * 50)))))}

    sources = Draining({KEY: Published(1, 100)})
    ledger = compute_ledger_until_balanced(
        CONFIG,
        10,
        sources,
        interval_s=0.5,
        clock=lambda: now[0],
        sleep=lambda s: now.__setitem__(0, now[0] + s),
    )
    assert ledger.balanced and now[0] == 2.0


def test_wait_gives_up_at_the_deadline_with_the_last_answer() -> None:
    now = [0.0]
    sources = PlainSources({KEY: Published(1, 100)}, stored_={KEY: Stored(r((1, 50)))})
    ledger = compute_ledger_until_balanced(
        CONFIG,
        3,
        sources,
        interval_s=0.5,
        clock=lambda: now[0],
        sleep=lambda s: now.__setitem__(0, now[0] + s),
    )
    assert not ledger.balanced and 2.5 <= now[0] <= 3.0


@given(
    last=st.integers(0, 300),
    stored=st.sets(st.integers(1, 320), max_size=80),
    wal=st.sets(st.integers(1, 320), max_size=40),
    pending=st.sets(st.integers(1, 320), max_size=40),
    dlq=st.sets(st.integers(1, 320), max_size=20),
)
def test_maths_agrees_with_python_sets(
    last: int, stored: set[int], wal: set[int], pending: set[int], dlq: set[int]
) -> None:
    sources = PlainSources(
        {KEY: Published(1, last)},
        stored_={KEY: Stored(IdRanges.from_ids(stored))},
        wal_={KEY: IdRanges.from_ids(wal)},
        pending_={KEY: IdRanges.from_ids(pending)},
        dlq_={KEY: IdRanges.from_ids(dlq)},
    )
    ledger = compute_ledger(CONFIG, sources)
    sym = ledger.to_dict()["symbols"][KEY]
    published = set(range(1, last + 1))
    held = stored | wal | pending
    missing = published - held - dlq
    assert sym["missing"] == len(missing)
    assert sym["stored"] == len(stored & published)
    assert sym["wal"] == len((wal & published) - stored)
    assert sym["pending"] == len((pending & published) - stored - wal)
    assert sym["dlq"] == len((dlq & published) - held)
    assert sym["extra"] == len(held - published)
    assert sym["published"] == sym["stored"] + sym["wal"] + sym["pending"] + sym["dlq"] + sym["missing"]
    assert ledger.balanced == (not missing and not (held - published))

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.manual_clock import ManualClock
from tests.support.telegram_stub import TelegramStub, WebhookReceiver


@pytest.fixture
def telegram() -> Iterator[TelegramStub]:
    stub = TelegramStub().start()
    try:
        yield stub
    finally:
        stub.stop()


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()

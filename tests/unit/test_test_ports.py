"""The suite's port picker: ports its servers can bind, never one an outgoing connection may take meanwhile."""

from __future__ import annotations

import socket

from tests.support.ports import _ephemeral_low, free_port


def test_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> None:
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert all(port < _ephemeral_low() for port in ports)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", ports[-1]))


def test_a_port_someone_listens_on_is_skipped() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        probe = free_port()
        taken.bind(("127.0.0.1", probe + 1))
        taken.listen()
        # The next pick would be probe + 1 (the picker walks upward); it is held, so it must be skipped.
        assert free_port() != probe + 1

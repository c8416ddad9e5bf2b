"""The local servers' ports (deploy/local): each asked-for port is free and new."""

import socket

from deploy.local.kafka_broker import free_port


def test_free_ports_are_never_handed_out_twice_and_can_be_bound():
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", ports[-1]))

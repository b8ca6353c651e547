#!/usr/bin/env python3
"""Records the request frames real Kafka clients send, for the codec's golden tests.

Run a broker (floe) on UPSTREAM, start this proxy on LISTEN, point a client at LISTEN:
every request frame the client sends is written to OUT/<client>-<api>-v<version>-<n>.hex
(the frame body after the 4-byte size, hex encoded), once per (api, version).

    python3 protocol/tests/capture.py 127.0.0.1:29092 127.0.0.1:19092 protocol/tests/golden kcat
"""
import socket
import struct
import sys
import threading
from pathlib import Path

listen, upstream, out, label = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4]
seen = set()


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def pump_requests(client, server):
    try:
        while True:
            size = read_exact(client, 4)
            body = read_exact(client, struct.unpack(">i", size)[0])
            api, version = struct.unpack(">hh", body[:4])
            if (api, version) not in seen:
                seen.add((api, version))
                (out / f"{label}-api{api}-v{version}.hex").write_text(body.hex() + "\n")
            server.sendall(size + body)
    except (EOFError, OSError):
        pass
    finally:
        server.close()


def pump_responses(server, client):
    try:
        while True:
            data = server.recv(65536)
            if not data:
                break
            client.sendall(data)
    except OSError:
        pass
    finally:
        client.close()


host, port = listen.rsplit(":", 1)
uhost, uport = upstream.rsplit(":", 1)
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((host, int(port)))
srv.listen()
while True:
    c, _ = srv.accept()
    s = socket.create_connection((uhost, int(uport)))
    threading.Thread(target=pump_requests, args=(c, s), daemon=True).start()
    threading.Thread(target=pump_responses, args=(s, c), daemon=True).start()

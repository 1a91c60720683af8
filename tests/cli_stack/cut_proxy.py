#!/usr/bin/env python3
"""cut_proxy.py UPSTREAM_PORT PORT_FILE MARKER

A TCP proxy in front of the hive that passes everything through, and on SIGUSR1 cuts every open
connection whose request line contains MARKER (as a dropped network would). Each cut is logged
on stdout as "cut N".
"""
import os
import signal
import socket
import sys
import threading

upstream_port, port_file, marker = int(sys.argv[1]), sys.argv[2], sys.argv[3].encode()
lock = threading.Lock()
marked = []


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def handle(client):
    upstream = socket.create_connection(("127.0.0.1", upstream_port))
    request = client.recv(65536)
    upstream.sendall(request)
    if marker in request.split(b"\r\n", 1)[0]:
        with lock:
            marked.append((client, upstream))
    threading.Thread(target=pump, args=(client, upstream), daemon=True).start()
    pump(upstream, client)
    for s in (client, upstream):
        try:
            s.close()
        except OSError:
            pass


def cut(signum, frame):
    with lock:
        victims = list(marked)
        marked.clear()
    for client, upstream in victims:
        for s in (client, upstream):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
    print("cut %d" % len(victims), flush=True)


signal.signal(signal.SIGUSR1, cut)
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 0))
server.listen(64)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.getsockname()[1]))
os.rename(port_file + ".tmp", port_file)
while True:
    conn, _ = server.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()

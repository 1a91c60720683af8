#!/usr/bin/env python3
"""drop_proxy.py UPSTREAM_PORT PORT_FILE CUT_BYTES

A TCP proxy in front of the hive that cuts the first job-stream connection after CUT_BYTES
bytes of its response (mid-event, as a flaky network would), and passes everything else
through untouched. Used to test that the keeper reconnects with Last-Event-ID.
"""
import os
import socket
import sys
import threading

upstream_port, port_file, cut = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
lock = threading.Lock()
already_cut = False


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
    global already_cut
    upstream = socket.create_connection(("127.0.0.1", upstream_port))
    request = client.recv(65536)
    upstream.sendall(request)
    with lock:
        do_cut = b"/stream" in request.split(b"\r\n", 1)[0] and not already_cut
        already_cut = already_cut or do_cut
    threading.Thread(target=pump, args=(client, upstream), daemon=True).start()
    if not do_cut:
        pump(upstream, client)
    else:
        sent = 0
        while sent < cut:
            data = upstream.recv(min(65536, cut - sent))
            if not data:
                break
            client.sendall(data)
            sent += len(data)
        client.shutdown(socket.SHUT_RDWR)
    client.close()
    upstream.close()


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

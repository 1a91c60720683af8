#!/usr/bin/env python3
"""rbee-test-deaf: a worker that listens on its port and never accepts a connection.

It binds 127.0.0.1:--port with a backlog of 0 and fills that backlog itself (one connection
completed and never accepted), so the kernel drops every further SYN: a blocking connect() to
the port waits for SYN retries (minutes), a non-blocking one reports EINPROGRESS at once.
Every other argument of the rbee worker contract is accepted and ignored. It runs until killed.
"""
import socket
import sys
import time


def main():
    args = sys.argv[1:]
    if args == ["--version"]:
        print("rbee-test-deaf 1.0")
        return 0
    try:
        port = int(args[args.index("--port") + 1])
    except (ValueError, IndexError):
        print("rbee-test-deaf: --port is required", file=sys.stderr)
        return 2
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(0)
    fillers = []
    for _ in range(4):
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.setblocking(False)
        try:
            c.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(c)
    print(f"rbee-test-deaf: listening on 127.0.0.1:{port}, backlog full, never accepting",
          flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())

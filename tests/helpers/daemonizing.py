"""Run a server after leaving a daemon behind that escapes the server's process group.

`python daemonizing.py TAG -- SERVER_ARGV...` double-forks: the grandchild calls setsid(), so
neither the group nor the session of the server holds it, prints `daemon PID`, and sleeps
(at most a minute, so a failing test cannot leave it for long) with TAG on its command line.
The first process then becomes the server (exec), as a `cargo run` or a daemonizing
init script would leave things.
"""

from __future__ import annotations

import os
import sys

DAEMON = "import sys, time; time.sleep(60)"


def main() -> None:
    tag, separator, *server = sys.argv[1:]
    assert separator == "--" and server, "usage: daemonizing.py TAG -- SERVER_ARGV..."
    read_fd, write_fd = os.pipe()
    if os.fork() == 0:
        os.close(read_fd)
        os.setsid()
        if os.fork() == 0:
            os.write(write_fd, f"{os.getpid()}\n".encode())
            os.close(write_fd)
            os.execv(sys.executable, [sys.executable, "-c", DAEMON, tag])
        os._exit(0)  # the middle process: its child is re-parented
    os.close(write_fd)
    with os.fdopen(read_fd) as pid_pipe:
        daemon_pid = int(pid_pipe.readline())
    os.wait()  # the middle process
    print(f"daemon {daemon_pid}", flush=True)
    os.execv(server[0], server)


if __name__ == "__main__":
    main()

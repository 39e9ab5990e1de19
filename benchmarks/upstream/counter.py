"""A stand-in upstream for the ``command`` source: each run is one upstream fetch.

usage: counter.py COUNTER_FILE [DELAY_SECONDS]
Appends one line to COUNTER_FILE (O_APPEND: concurrent runs never lose a line), waits DELAY
seconds (a network round trip), and prints a fresh random key.
"""

import os
import sys
import time

path = sys.argv[1]
delay = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
os.write(fd, f"{os.getpid()}\n".encode())
os.close(fd)
if delay:
    time.sleep(delay)
print("kb-bench-" + os.urandom(16).hex())

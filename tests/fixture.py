"""What the Python client tests share: the sdk_fixture process (mock providers
plus a gateway, answering `stats` on stdin) and a check runner that reports
every failure and exits non-zero on any.

    from fixture import Fixture
    fx = Fixture(sys.argv[1])          # starts target/debug/examples/sdk_fixture
    fx.check("name", fn)               # runs fn, prints ok/FAIL
    fx.finish()                        # prints 'N passed, M failed', exits 1 on a failure
"""
import json
import subprocess
import sys


class Fixture:
    """The running sdk_fixture: `info` is its first JSON line (gateway URL, mock texts)."""

    def __init__(self, path):
        self.proc = subprocess.Popen([path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.info = json.loads(self.proc.stdout.readline())
        self.results = []

    def stats(self):
        """The mock providers' own counts (requests, last body, ...)."""
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def check(self, name, fn):
        """Runs `fn`; records and prints its outcome (every failure, not only the first)."""
        try:
            fn()
            self.results.append((name, None))
            print(f"ok   {name}")
        except Exception as e:  # noqa: BLE001 - report every failure
            self.results.append((name, e))
            print(f"FAIL {name}: {e!r}")

    def finish(self):
        """Stops the fixture, prints the tally and exits (1 when a check failed)."""
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        failed = sum(1 for _, e in self.results if e)
        print(f"{len(self.results) - failed} passed, {failed} failed")
        sys.exit(1 if failed else 0)

"""Claude Code (`claude -p`) through the gateway to the OpenAI-format mock.

Usage: test_claude.py PATH_TO_SDK_FIXTURE PATH_TO_CLAUDE
Prints 'N passed, M failed' and exits non-zero on any failure.
"""
import json
import os
import subprocess
import sys
import tempfile

fixture = subprocess.Popen([sys.argv[1]], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
info = json.loads(fixture.stdout.readline())
results = []


def stats():
    fixture.stdin.write("stats\n")
    fixture.stdin.flush()
    return json.loads(fixture.stdout.readline())


def check(name, fn):
    try:
        fn()
        results.append((name, None))
        print(f"ok   {name}")
    except Exception as e:  # noqa: BLE001 - report every failure
        results.append((name, e))
        print(f"FAIL {name}: {e!r}")


def claude_answers_from_the_openai_mock():
    with tempfile.TemporaryDirectory() as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE"))}
        env.update({
            "HOME": home,
            "ANTHROPIC_BASE_URL": info["gateway"],
            "ANTHROPIC_AUTH_TOKEN": "gw-test-key",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_TELEMETRY": "1",
        })
        out = subprocess.run([os.path.abspath(sys.argv[2]), "-p", "Say hello."], env=env, cwd=home, capture_output=True,
                             text=True, timeout=180)
    assert out.returncode == 0, (out.returncode, out.stdout[-2000:], out.stderr[-2000:])
    assert info["openai_text"] in out.stdout, (out.stdout[-2000:], out.stderr[-2000:])
    s = stats()
    assert s["openai"]["requests"] >= 1, s
    assert s["anthropic"]["requests"] == 0, s
    sent = json.loads(s["openai"]["last_body"])
    assert sent["model"] == "gpt-test" and isinstance(sent["messages"], list), sent


check("claude -p answers through the gateway from an OpenAI-format provider", claude_answers_from_the_openai_mock)

fixture.stdin.close()
fixture.wait(timeout=30)
failed = sum(1 for _, e in results if e)
print(f"{len(results) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)

"""Claude Code (`claude -p`) through the gateway to the OpenAI-format mock.

Usage: test_claude.py PATH_TO_SDK_FIXTURE PATH_TO_CLAUDE
Prints 'N passed, M failed' and exits non-zero on any failure.
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from fixture import Fixture  # noqa: E402

fx = Fixture(sys.argv[1])
info = fx.info
stats = fx.stats


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


fx.check("claude -p answers through the gateway from an OpenAI-format provider", claude_answers_from_the_openai_mock)
fx.finish()

"""The gateway seen through the official anthropic and openai SDKs and curl.

Usage: test_sdks.py PATH_TO_SDK_FIXTURE
Prints 'N passed, M failed' and exits non-zero on any failure.
"""
import json
import subprocess
import sys

import anthropic
import openai

fixture = subprocess.Popen([sys.argv[1]], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
info = json.loads(fixture.stdout.readline())
GW = info["gateway"]
KEY = "gw-test-key"


def stats():
    fixture.stdin.write("stats\n")
    fixture.stdin.flush()
    return json.loads(fixture.stdout.readline())


def curl(*args):
    out = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", *args], capture_output=True, text=True, check=True)
    body, _, code = out.stdout.rpartition("\n")
    return int(code), body


results = []


def check(name, fn):
    try:
        fn()
        results.append((name, None))
        print(f"ok   {name}")
    except Exception as e:  # noqa: BLE001 - report every failure
        results.append((name, e))
        print(f"FAIL {name}: {e!r}")


ac = anthropic.Anthropic(base_url=GW, api_key=KEY, max_retries=0)
oc = openai.OpenAI(base_url=GW + "/v1", api_key=KEY, max_retries=0)


def anthropic_plain():
    msg = ac.messages.create(model="mock,claude-test", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    assert msg.content[0].text == info["anthropic_text"], msg
    assert msg.model == "claude-test", msg.model
    sent = json.loads(stats()["anthropic"]["last_body"])
    assert sent["model"] == "claude-test", sent


def anthropic_stream():
    with ac.messages.stream(model="mock,claude-test", max_tokens=50, messages=[{"role": "user", "content": "hi"}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == info["anthropic_text"], text
    assert final.stop_reason == "end_turn", final


def openai_plain():
    r = oc.chat.completions.create(model="oai,gpt-test", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == info["openai_text"], r
    assert r.model == "gpt-test", r.model


def openai_stream():
    chunks = oc.chat.completions.create(model="oai,gpt-test", messages=[{"role": "user", "content": "hi"}], stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == info["openai_text"], text


def sequential_reuse():
    before = stats()["anthropic"]
    for _ in range(10):
        ac.messages.create(model="mock,claude-test", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    after = stats()["anthropic"]
    assert after["requests"] - before["requests"] == 10, (before, after)
    assert after["accepted"] == 1, f"the mock accepted {after['accepted']} connections for all requests"


def wrong_key_is_401():
    bad = anthropic.Anthropic(base_url=GW, api_key="wrong", max_retries=0)
    try:
        bad.messages.create(model="mock,claude-test", max_tokens=5, messages=[])
    except anthropic.AuthenticationError as e:
        assert e.status_code == 401
        return
    raise AssertionError("expected 401")


def unknown_provider_is_400():
    try:
        ac.messages.create(model="nope,x", max_tokens=5, messages=[])
    except anthropic.BadRequestError as e:
        assert "unknown provider \"nope\"" in str(e), str(e)
        return
    raise AssertionError("expected 400")


def curl_health():
    code, body = curl(f"{GW}/health", "-H", f"x-api-key: {KEY}")
    assert code == 200 and json.loads(body)["status"] == "ok", (code, body)
    code, body = curl(f"{GW}/health")
    assert code == 401, (code, body)


def curl_error_shape():
    code, body = curl(f"{GW}/v1/chat/completions", "-H", f"authorization: Bearer {KEY}",
                      "-H", "content-type: application/json", "-d", "{broken")
    err = json.loads(body)["error"]
    assert code == 400 and err["code"] == "invalid_json", (code, body)


for name, fn in [
    ("anthropic SDK: messages.create", anthropic_plain),
    ("anthropic SDK: messages.stream", anthropic_stream),
    ("openai SDK: chat.completions.create", openai_plain),
    ("openai SDK: chat.completions stream", openai_stream),
    ("10 sequential SDK calls, 1 upstream connection", sequential_reuse),
    ("anthropic SDK: wrong gateway key -> 401", wrong_key_is_401),
    ("anthropic SDK: unknown provider -> 400", unknown_provider_is_400),
    ("curl: /health with and without the key", curl_health),
    ("curl: OpenAI-shaped error", curl_error_shape),
]:
    check(name, fn)

fixture.stdin.close()
fixture.wait(timeout=30)
failed = sum(1 for _, e in results if e)
print(f"{len(results) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)

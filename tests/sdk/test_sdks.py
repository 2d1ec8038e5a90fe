"""The gateway seen through the official anthropic and openai SDKs and curl.

Usage: test_sdks.py PATH_TO_SDK_FIXTURE
Prints 'N passed, M failed' and exits non-zero on any failure.
"""
import json
import os
import subprocess
import sys

import anthropic
import openai

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from fixture import Fixture  # noqa: E402

fx = Fixture(sys.argv[1])
info = fx.info
stats = fx.stats
GW = info["gateway"]
KEY = "gw-test-key"


def curl(*args):
    out = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", *args], capture_output=True, text=True, check=True)
    body, _, code = out.stdout.rpartition("\n")
    return int(code), body


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


# Cross-format: the anthropic SDK against the OpenAI-format mock ("oai") and
# the openai SDK against the Anthropic mock ("mock"), translated by the gateway.
TOOL_ANTHROPIC = {"name": "lookup", "description": "Look something up",
                  "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}}}
TOOL_OPENAI = {"type": "function", "function": {"name": "lookup", "description": "Look something up",
               "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}}


def anthropic_sdk_to_openai_provider():
    msg = ac.messages.create(model="oai,gpt-test", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    assert msg.content[0].text == info["openai_text"], msg
    assert msg.stop_reason == "end_turn", msg
    sent = json.loads(stats()["openai"]["last_body"])
    assert sent["messages"] == [{"role": "user", "content": "hi"}], sent


def anthropic_sdk_stream_from_openai_provider():
    with ac.messages.stream(model="oai,gpt-test", max_tokens=50, messages=[{"role": "user", "content": "hi"}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == info["openai_text"], text
    assert final.stop_reason == "end_turn", final
    assert final.usage.output_tokens > 0, final.usage


def anthropic_sdk_tool_round_trip_via_openai_provider():
    user = {"role": "user", "content": "look it up"}
    with ac.messages.stream(model="oai,gpt-test", max_tokens=50, tools=[TOOL_ANTHROPIC], messages=[user]) as s:
        first = s.get_final_message()
    assert first.stop_reason == "tool_use", first
    call = first.content[0]
    assert (call.type, call.name, call.input) == ("tool_use", "lookup", {"query": "mock"}), call
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "42"}]}
    msg = ac.messages.create(model="oai,gpt-test", max_tokens=50, tools=[TOOL_ANTHROPIC],
                             messages=[user, {"role": "assistant", "content": first.content}, result])
    assert msg.content[0].text == info["openai_text"], msg
    sent = json.loads(stats()["openai"]["last_body"])
    assert sent["messages"][1]["tool_calls"][0]["function"]["name"] == "lookup", sent
    assert sent["messages"][2] == {"role": "tool", "tool_call_id": call.id, "content": "42"}, sent


def openai_sdk_to_anthropic_provider():
    r = oc.chat.completions.create(model="mock,claude-test", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == info["anthropic_text"], r
    assert r.choices[0].finish_reason == "stop", r
    sent = json.loads(stats()["anthropic"]["last_body"])
    assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}], sent


def openai_sdk_stream_from_anthropic_provider():
    chunks = list(oc.chat.completions.create(model="mock,claude-test", messages=[{"role": "user", "content": "hi"}],
                                             stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == info["anthropic_text"], text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0, chunks[-1]


def openai_sdk_tool_round_trip_via_anthropic_provider():
    user = {"role": "user", "content": "look it up"}
    chunks = list(oc.chat.completions.create(model="mock,claude-test", tools=[TOOL_OPENAI], messages=[user], stream=True))
    args = "".join(tc.function.arguments or "" for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or []))
    first = next(tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or []) if tc.id)
    assert (first.function.name, json.loads(args)) == ("lookup", {"query": "mock"}), (first, args)
    assert any(c.choices and c.choices[0].finish_reason == "tool_calls" for c in chunks)
    r = oc.chat.completions.create(model="mock,claude-test", tools=[TOOL_OPENAI], messages=[
        user,
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": first.id, "type": "function", "function": {"name": "lookup", "arguments": args}}]},
        {"role": "tool", "tool_call_id": first.id, "content": "42"},
    ])
    assert r.choices[0].message.content == info["anthropic_text"], r
    sent = json.loads(stats()["anthropic"]["last_body"])
    assert sent["messages"][1]["content"][0] == {"type": "tool_use", "id": first.id, "name": "lookup",
                                                 "input": {"query": "mock"}}, sent
    assert sent["messages"][2]["content"][0]["type"] == "tool_result", sent


def key_pool_429_is_invisible():
    # `pooled` has two keys; the provider answers key 1 with 429 + retry-after.
    for _ in range(4):
        msg = ac.messages.create(model="pooled,claude-test", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
        assert msg.content[0].type == "text", msg
    seen = stats()["pooled"]
    assert seen == {"key1": 1, "key2": 4}, f"requests per key at the provider: {seen}"


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
    ("anthropic SDK -> OpenAI-format provider: messages.create", anthropic_sdk_to_openai_provider),
    ("anthropic SDK -> OpenAI-format provider: messages.stream", anthropic_sdk_stream_from_openai_provider),
    ("anthropic SDK -> OpenAI-format provider: tool call round trip", anthropic_sdk_tool_round_trip_via_openai_provider),
    ("openai SDK -> Anthropic provider: chat.completions.create", openai_sdk_to_anthropic_provider),
    ("openai SDK -> Anthropic provider: stream with usage", openai_sdk_stream_from_anthropic_provider),
    ("openai SDK -> Anthropic provider: tool call round trip", openai_sdk_tool_round_trip_via_anthropic_provider),
    ("anthropic SDK: a 429 on one key answered by another, invisibly", key_pool_429_is_invisible),
]:
    fx.check(name, fn)

fx.finish()

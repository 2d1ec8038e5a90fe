"""The dashboard in headless Chromium against a live gateway with traffic.

Usage: test_dashboard.py PATH_TO_SDK_FIXTURE SCREENSHOT.png

Checks, in order: the page asks for the APIKEY and connects with it; after
traffic the numbers on the page equal /api/connections/details read at the
same moment (traffic stopped, the page showing an event newer than that read);
they change by exactly the requests sent when traffic flows again; the
destroy button, pressed from the keyboard, closes the idle connections (the
upstream's own open count drops to 0); the page has the roles and names a
screen reader needs and fits a phone's width. Prints 'N passed, M failed'.
"""
import json
import subprocess
import sys
import time
import urllib.request

from playwright.sync_api import sync_playwright

fixture = subprocess.Popen([sys.argv[1]], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
info = json.loads(fixture.stdout.readline())
GW = info["gateway"]
KEY = "gw-test-key"
SHOT = sys.argv[2]
results = []


def check(name, fn):
    try:
        fn()
        results.append((name, None))
        print(f"ok   {name}", flush=True)
    except Exception as e:  # noqa: BLE001 - report every failure, go on
        results.append((name, e))
        print(f"FAIL {name}: {e!r}", flush=True)


def upstream():
    fixture.stdin.write("stats\n")
    fixture.stdin.flush()
    return json.loads(fixture.stdout.readline())


def call(path, body=None):
    req = urllib.request.Request(GW + path, headers={"x-api-key": KEY, "content-type": "application/json"},
                                 data=None if body is None else json.dumps(body).encode(),
                                 method="GET" if body is None else "POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def traffic(n_anthropic, n_openai):
    for _ in range(n_anthropic):
        call("/v1/messages", {"model": "mock,claude-test", "max_tokens": 20,
                              "messages": [{"role": "user", "content": "hi"}]})
    for _ in range(n_openai):
        call("/v1/chat/completions", {"model": "oai,gpt-test", "messages": [{"role": "user", "content": "hi"}]})


def details():
    d = call("/api/connections/details")
    return d["timestamp"], d["data"]


def wait_for(page, js, arg=None, what="condition", timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if page.evaluate(js, arg):
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def page_after(page, ts):
    """Waits until the page shows an event read after `ts` (RFC 3339, same clock)."""
    wait_for(page, "ts => (document.body.dataset.timestamp || '') > ts", ts, f"an event after {ts}")


def page_numbers(page):
    return page.evaluate("""() => {
      const num = (root, f) => root.querySelector(`[data-field="${f}"]`).textContent;
      const out = {overview: {}, providers: {}};
      for (const f of ["totalRequests", "overallReuseRate", "totalActiveConnections", "totalIdleConnections"])
        out.overview[f] = num(document.getElementById("overview"), f);
      for (const sec of document.querySelectorAll("section[data-provider]")) {
        const p = {};
        for (const dd of sec.querySelectorAll("dd[data-field]")) p[dd.dataset.field] = dd.textContent;
        p.status = num(sec, "status");
        p.protocol = num(sec, "protocol");
        p.rows = [...sec.querySelectorAll("tr[data-connection]")].map(tr => ({
          id: tr.dataset.connection,
          protocol: tr.querySelector('[data-col="protocol"]').textContent,
          state: tr.querySelector('[data-col="state"]').textContent,
          requests: tr.querySelector('[data-col="requests"]').textContent,
        }));
        out.providers[sec.dataset.provider] = p;
      }
      return out;
    }""")


def expected(d):
    """What the page must show for /details data `d` (ages excluded: they move)."""
    ov = d["overview"]
    def proto(o):
        if o.get("protocol") == "h2":
            return f'h2 ({o.get("openStreams") or 0} streams)'
        return o.get("protocol") or "-"

    out = {"overview": {"totalRequests": str(ov["totalRequests"]),
                        "overallReuseRate": f'{ov["overallReuseRate"]:.1f}%',
                        "totalActiveConnections": str(ov["totalActiveConnections"]),
                        "totalIdleConnections": str(ov["totalIdleConnections"])},
           "providers": {}}
    for p in d["providers"]:
        c, perf, k = p["connections"], p["performance"], p["counters"]
        out["providers"][p["provider"]] = {
            "reuseRate": f'{perf["reuseRate"]:.1f}%', "totalRequests": str(perf["totalRequests"]),
            "reuseCount": str(perf["reuseCount"]), "active": str(c["active"]), "idle": str(c["idle"]),
            "connecting": str(c["connecting"]), "maxSockets": str(c["maxSockets"]),
            "waiters": str(k["waitersNow"]), "tlsFull": str(k["tlsHandshakes"]["full"]),
            "tlsResumed": str(k["tlsHandshakes"]["resumed"]), "created": str(k["connectionsCreated"]),
            "closed": str(k["connectionsClosed"]), "stale": str(k["staleCaughtBeforeReuse"]),
            "status": p["status"], "protocol": p["protocol"],
            "rows": [{"id": str(o["id"]), "protocol": proto(o), "state": o["state"], "requests": str(o["requests"])}
                     for o in p["openConnections"]],
        }
    return out


def strip_ages(shown):
    for p in shown["providers"].values():
        p.pop("averageConnectionAge", None)
    return shown


def same_moment(page):
    """Page numbers vs /details with traffic stopped: read, then wait for a newer page event."""
    ts, d = details()
    page_after(page, ts)
    shown = strip_ages(page_numbers(page))
    _, d2 = details()
    want = expected(d2)
    assert expected(d) == want, "the gateway's numbers moved with no traffic"
    assert shown == want, f"page shows\n{json.dumps(shown, indent=1)}\n/details says\n{json.dumps(want, indent=1)}"
    return d2


with sync_playwright() as pw:
    browser = pw.chromium.launch(
        executable_path="/usr/bin/chromium",
        args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync"])
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # The 401s of the first try (no key) and of the wrong key are expected.
    page.on("console", lambda m: m.type == "error" and "401" not in m.text and errors.append(m.text))
    page.goto(GW + "/dashboard")

    def asks_for_key_then_connects():
        page.get_by_label("Gateway APIKEY").wait_for(timeout=10_000)
        page.get_by_label("Gateway APIKEY").fill("wrong-key")
        page.get_by_role("button", name="Connect").click()
        page.get_by_text("That key was refused.").wait_for(timeout=10_000)
        page.get_by_label("Gateway APIKEY").fill(KEY)
        page.keyboard.press("Enter")
        wait_for(page, "() => Number(document.body.dataset.seq || 0) >= 1", what="a first event")
        assert page.evaluate("() => sessionStorage.getItem('keepwarm.apikey')") == KEY
        assert KEY not in page.url
        assert page.locator("#conn-state").text_content() == "Live"

    def numbers_equal_details_after_traffic():
        traffic(12, 5)
        d = same_moment(page)
        assert d["overview"]["totalRequests"] == 17, d["overview"]
        up = upstream()
        mock = next(p for p in d["providers"] if p["provider"] == "mock")
        assert mock["counters"]["connectionsCreated"] == up["anthropic"]["accepted"], (mock, up)
        assert sum(o["requests"] for o in mock["openConnections"]) == up["anthropic"]["requests"], up

    def numbers_change_when_traffic_flows():
        before = page_numbers(page)["providers"]["mock"]["totalRequests"]
        traffic(8, 0)
        d = same_moment(page)
        after = page_numbers(page)["providers"]["mock"]["totalRequests"]
        assert int(after) == int(before) + 8, (before, after)
        mock = next(p for p in d["providers"] if p["provider"] == "mock")
        rps = sum(pt["requests"] for pt in mock["recent"]["points"])
        assert rps == int(after), (rps, after)
        bars = page.locator('section[data-provider="mock"] svg[data-chart="rps"] rect').count()
        assert bars == 30, bars
        label = page.locator('section[data-provider="mock"] svg[data-chart="latency"]').get_attribute("aria-label")
        assert "p50" in label and "p99" in label, label
        # The latest latency shown is the newest slot with traffic in /details.
        last = [pt for pt in mock["recent"]["points"] if pt["p50Ms"] is not None][-1]
        sec = page.locator('section[data-provider="mock"]')
        for field, key in (("p50Now", "p50Ms"), ("p99Now", "p99Ms")):
            shown = sec.locator(f'[data-field="{field}"]').text_content()
            assert shown.endswith(" ms") and abs(float(shown[:-3]) - last[key]) < 0.051, (shown, last)  # one decimal, rounded

    def screenshot():
        page.screenshot(path=SHOT, full_page=True)

    def screen_reader_roles_and_names():
        assert page.get_by_role("table", name="Open connections of mock").count() == 1
        assert page.get_by_role("button", name="Close the idle connections of oai").count() == 1
        assert page.get_by_role("status").count() >= 1
        assert page.locator("[aria-live=polite]").count() == 1
        for svg in page.locator("svg[data-chart]").all():
            assert svg.get_attribute("role") == "img" and svg.get_attribute("aria-label"), svg
        assert page.get_by_role("heading", name="All providers").count() == 1

    def destroy_from_the_keyboard():
        assert upstream()["anthropic"]["open"] >= 1
        target = page.get_by_role("button", name="Close the idle connections of mock")
        for _ in range(60):
            page.keyboard.press("Tab")
            if target.evaluate("b => b === document.activeElement"):
                break
        else:
            raise AssertionError("the destroy button is not reachable with Tab")
        page.keyboard.press("Enter")
        wait_for(page, "() => document.getElementById('announce').textContent.includes('closed')",
                 what="the destroy announcement")
        ts, d = details()
        mock = next(p for p in d["providers"] if p["provider"] == "mock")
        assert mock["connections"]["idle"] == 0 and mock["openConnections"] == [], mock
        assert mock["counters"]["closedByReason"]["destroyed"] >= 1, mock["counters"]
        page_after(page, ts)
        shown = page_numbers(page)["providers"]["mock"]
        assert shown["idle"] == "0" and shown["rows"] == [], shown
        assert "No open connection." in page.locator('section[data-provider="mock"] tbody').text_content()
        end = time.monotonic() + 5
        while upstream()["anthropic"]["open"] != 0 and time.monotonic() < end:
            time.sleep(0.05)
        assert upstream()["anthropic"]["open"] == 0, "the upstream still has connections open"

    def fits_a_phone():
        page.set_viewport_size({"width": 375, "height": 740})
        time.sleep(0.3)
        wide = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert wide <= 0, f"{wide}px wider than the phone"

    def no_script_errors():
        assert not errors, errors

    check("asks for the APIKEY (refuses a wrong one), then connects", asks_for_key_then_connects)
    check("page numbers equal /api/connections/details at the same moment", numbers_equal_details_after_traffic)
    check("numbers change by exactly the requests sent", numbers_change_when_traffic_flows)
    check("screenshot saved", screenshot)
    check("roles and names for screen readers", screen_reader_roles_and_names)
    check("destroy from the keyboard closes the idle connections", destroy_from_the_keyboard)
    check("fits a phone's width", fits_a_phone)
    check("no script errors", no_script_errors)
    browser.close()

fixture.stdin.close()
fixture.wait(timeout=30)
failed = [n for n, e in results if e]
print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)

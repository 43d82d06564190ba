"""The status page (issue 6) in a real headless Chromium against a real cluster.

`bramble master` and two `bramble node` agents as processes with real Podman
(tests/e2e/cluster_fixtures.py), Debian's Chromium driven by playwright
(executable_path=/usr/bin/chromium, never a downloaded browser), the pinned real kubectl.
The page is used as a person would: typing the admin token or opening a one-time link,
tapping buttons (some by keyboard only), confirming in dialogs; every action's effect is
then checked through the API (bramble.client.Client), never through the page alone.

Screenshots (phone 390x844 and desktop 1280x800, light and dark) go to $BRAMBLE_SCREENSHOTS
or a pytest temporary folder; the folder is printed at the start of the module.
Waits are generous guards against hangs (WAIT), never speed expectations.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import socket
import subprocess
import textwrap
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import pytest_asyncio

from bramble import joinproof
from bramble.kube.errors import NotFound
from bramble.node import netns
from tests.e2e.cluster_fixtures import (  # noqa: F401  (the fixtures: cluster, ns)
    NODES,
    Cluster,
    Obj,
    apps_path,
    cluster_fixture,
    namespace_fixture,
    pods_path,
    terminating,
    wait_for,
)
from tests.e2e.netbed import _copy
from tests.images import BUSYBOX_IMAGE

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason="Debian's chromium is not installed (./dev installs it)"),
    pytest.mark.asyncio(loop_scope="module"),
]
pw = pytest.importorskip("playwright.async_api")
expect = pw.expect

# Chromium as root, kept off the internet (see shared notes, TESTBED.md "Browsers").
FLAGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-quic"]
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}
WAIT = 90_000  # ms: a guard against hangs, never a speed expectation
PAGE_BUDGET = 150 * 1024  # bytes: the page weight limit
PENDING = "/bramble/v1/pending-nodes"

# A Deployment whose pods print a numbered tick every second (for the logs).
DEPLOYMENT = textwrap.dedent(f"""\
    apiVersion: apps/v1
    kind: Deployment
    metadata: {{{{name: {{name}}}}}}
    spec:
      replicas: {{replicas}}
      selector: {{{{matchLabels: {{{{app: {{name}}}}}}}}}}
      template:
        metadata: {{{{labels: {{{{app: {{name}}}}}}}}}}
        spec:
          terminationGracePeriodSeconds: 1
          containers:
          - name: main
            image: {BUSYBOX_IMAGE}
            imagePullPolicy: Never
            command: [sh, -c, 'i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 1; done']
    """)
SCENE = DEPLOYMENT.format(name="web", replicas=2) + textwrap.dedent(f"""\
    ---
    apiVersion: v1
    kind: Pod
    metadata: {{name: crash}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: crash
        image: {BUSYBOX_IMAGE}
        imagePullPolicy: Never
        command: [sh, -c, "echo about to fail; exit 3"]
    ---
    apiVersion: batch/v1
    kind: Job
    metadata: {{name: pi}}
    spec:
      template:
        spec:
          restartPolicy: Never
          terminationGracePeriodSeconds: 1
          containers:
          - name: pi
            image: {BUSYBOX_IMAGE}
            imagePullPolicy: Never
            command: [sh, -c, "echo 3.14"]
    ---
    apiVersion: v1
    kind: Service
    metadata: {{name: web}}
    spec:
      type: NodePort
      selector: {{app: web}}
      ports: [{{port: 80, targetPort: 8080}}]
    """)


# --- fixtures -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shots(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The screenshots' folder, printed past pytest's output capture."""
    folder = Path(os.environ.get("BRAMBLE_SCREENSHOTS") or tmp_path_factory.mktemp("screens"))
    folder.mkdir(parents=True, exist_ok=True)
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"status page screenshots: {folder}")
    return folder


def _listen_in(netns_path: str, port: int) -> socket.socket:
    """A listening socket on 127.0.0.1:`port` of another network namespace (a socket
    stays in the namespace it was made in; a throwaway thread enters it)."""
    made: list[socket.socket] = []

    def run() -> None:
        fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            netns._setns(fd)  # noqa: SLF001 - the agent's own setns wrapper
        finally:
            os.close(fd)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(128)
        sock.setblocking(False)
        made.append(sock)

    thread = threading.Thread(target=run, name="browser-netns-listen")
    thread.start()
    thread.join()
    assert made, "could not listen inside the browser's namespace"
    return made[0]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
                  ) -> AsyncIterator[Any]:
    """Chromium in a network namespace of its own, where nothing but loopback exists:
    it cancels requests in flight (net::ERR_NETWORK_CHANGED) whenever an interface of its
    namespace comes or goes, which the agents' Podman networks and other tests do all the
    time on the host. The master's port is relayed from that loopback to the host's."""
    expect.set_options(timeout=WAIT)
    name = f"bsp-{secrets.token_hex(3)}"
    await asyncio.to_thread(subprocess.run, ["ip", "netns", "add", name], check=True)
    server = None
    relays: set[asyncio.Task[None]] = set()
    try:
        await asyncio.to_thread(subprocess.run, ["ip", "-n", name, "link", "set", "lo", "up"],
                                check=True)
        port = urlsplit(cluster.master.url).port
        assert port is not None

        async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:  # the master is restarting: as a refused connection
                writer.close()
                return
            task = asyncio.current_task()
            assert task is not None
            relays.add(task)
            try:
                await asyncio.gather(_copy(reader, up_writer), _copy(up_reader, writer))
            finally:
                relays.discard(task)
                writer.close()
                up_writer.close()

        server = await asyncio.start_server(relay, sock=_listen_in(f"/run/netns/{name}", port))
        wrapper = tmp_path_factory.mktemp("chromium") / "chromium"
        wrapper.write_text(f'#!/bin/sh\nexec nsenter --net=/run/netns/{name} {CHROMIUM} "$@"\n')
        wrapper.chmod(0o755)
        async with pw.async_playwright() as playwright:
            chromium = await playwright.chromium.launch(executable_path=str(wrapper),
                                                        args=FLAGS)
            try:
                yield chromium
            finally:
                await chromium.close()
    finally:
        if server is not None:
            server.close()
        for task in list(relays):
            task.cancel()
        await asyncio.gather(*relays, return_exceptions=True)
        if server is not None:
            await server.wait_closed()
        await asyncio.to_thread(subprocess.run, ["ip", "netns", "del", name], check=False)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def scene(cluster: Cluster) -> AsyncIterator[str]:
    """A namespace with a Deployment (two pods printing a tick a second), a crashing pod,
    a Job and a NodePort Service, applied with kubectl; its pods started."""
    ns = await cluster.namespace(f"page-{secrets.token_hex(3)}")
    try:
        await cluster.kubectl("apply", "-n", ns, "-f", "-", stdin=SCENE)
        await cluster.kubectl("rollout", "status", "-n", ns, "deployment/web", "--timeout=120s")
        await cluster.kubectl("wait", "-n", ns, "--for=condition=complete", "job/pi",
                              "--timeout=120s")
        yield ns
    finally:
        await cluster.delete_namespace(ns)


@contextlib.asynccontextmanager
async def page_of(browser: Any, viewport: str = "phone", scheme: str = "light",
                  ) -> AsyncIterator[Any]:
    """A fresh browser context (no cookies) and page; fails on any script error."""
    context = await browser.new_context(viewport=VIEWPORTS[viewport], color_scheme=scheme,
                                        ignore_https_errors=True)  # the cluster's own CA
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    try:
        yield page
    finally:
        await context.close()
    assert not errors, f"script errors on the page: {errors}"


NETWORK_CHANGED = ("ERR_NETWORK_CHANGED", "chrome-error://", "interrupted by another navigation")


async def goto(page: Any, url: str) -> None:
    """Load `url` and every asset of the page. Chromium aborts requests in flight with
    net::ERR_NETWORK_CHANGED when interfaces come and go (the node agents' Podman networks,
    other tests' namespaces): such a load is tried again. (Not for one-time links.)"""
    for _ in range(5):
        failed: list[str] = []

        def note(req: Any, failed: list[str] = failed) -> None:
            if "/web/v1/" not in req.url:
                failed.append(req.failure or "")

        page.on("requestfailed", note)
        try:
            await page.goto(url)
        except pw.Error as err:
            if not any(mark in str(err) for mark in NETWORK_CHANGED):
                raise
            failed.append("ERR_NETWORK_CHANGED")
        finally:
            page.remove_listener("requestfailed", note)
        if not any(mark in f for f in failed for mark in NETWORK_CHANGED):
            return
    raise AssertionError(f"{url} did not load: the network kept changing")


async def log_in(page: Any, cluster: Cluster) -> None:
    """Type the admin token into the login form (focused by the page) and press Enter."""
    await goto(page, cluster.master.url + "/")
    await expect(page.locator("#login")).to_be_visible()
    await expect(page.locator("#token")).to_be_focused()
    await page.keyboard.type(cluster.handle.token)
    await page.keyboard.press("Enter")
    error = page.locator("#login-error")
    for _ in range(5):  # the POST cut short by a network change (see `goto`): again
        await expect(page.locator("#health:not(:empty), #login-error:not([hidden])").first
                     ).to_be_visible()
        if await page.locator("#health").is_visible():
            break
        assert "cannot be reached" in await error.inner_text()
        await page.locator("#login-form button[type=submit]").click()
    await expect(page.locator("#health")).to_contain_text("nodes ready")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")


async def no_overflow(page: Any) -> None:
    width, inner = await page.evaluate(
        "[document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= inner, f"horizontal scrolling: the page is {width} px wide in {inner} px"


def node_card(page: Any, name: str) -> Any:
    return page.locator(f'li.node[data-node="{name}"]')


def row(page: Any, kind: str, ns: str, name: str) -> Any:
    return page.locator(f'li.{kind}[data-name="{ns}/{name}"]')


async def pending_request(cluster: Cluster) -> tuple[str, str]:
    """A node without the join token asks to join: (its name, its fingerprint)."""
    name = f"pi-wants-{secrets.token_hex(3)}"
    await cluster.api.request("POST", joinproof.REQUEST_PATH,
                              json={"node": name, "key": secrets.token_hex(32)})
    listed = await cluster.api.request("GET", PENDING)
    return name, next(r["fingerprint"] for r in listed["items"] if r["name"] == name)


# Every visible control at least 44x44 CSS px (touch targets), as the issue asks.
SMALL_TARGETS = """() => [...document.querySelectorAll('button, a, input, select')]
  .filter((e) => e.offsetParent !== null && e.type !== 'hidden')
  .map((e) => [e.id || e.textContent.trim().slice(0, 30), e.getBoundingClientRect()])
  .filter(([, r]) => r.width < 44 || r.height < 44)
  .map(([what, r]) => `${what}: ${Math.round(r.width)}x${Math.round(r.height)}`)"""

# Text against the first opaque background behind it: at least 4.5:1 (3:1 for large text),
# the WCAG AA levels.
LOW_CONTRAST = """() => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] === 1)) return c.slice(0, 3);
    }
    return rgb(getComputedStyle(document.documentElement).backgroundColor).slice(0, 3);
  };
  const bad = [];
  for (const el of document.querySelectorAll('body *')) {
    if (el.offsetParent === null || el.disabled) continue;
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own) continue;
    const style = getComputedStyle(el);
    const [l1, l2] = [lum(rgb(style.color)), lum(background(el))].sort((a, b) => b - a);
    const ratio = (l1 + 0.05) / (l2 + 0.05);
    const size = parseFloat(style.fontSize), weight = Number(style.fontWeight);
    const large = size >= 24 || (size >= 18.66 && weight >= 700);
    if (ratio < (large ? 3 : 4.5)) bad.push(`${el.textContent.trim().slice(0, 30)}: ${ratio.toFixed(2)}`);
  }
  return bad;
}"""


# --- tests --------------------------------------------------------------------------------

@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("viewport", ["phone", "desktop"])
async def test_login_with_the_token_shows_the_cluster(
        cluster: Cluster, scene: str, browser: Any, shots: Path, viewport: str,
        scheme: str) -> None:
    a, b = (n.name for n in cluster.nodes)
    pending, fingerprint = await pending_request(cluster)
    service = await cluster.api.request("GET", f"/api/v1/namespaces/{scene}/services/web")
    node_port = service["spec"]["ports"][0]["nodePort"]
    async with page_of(browser, viewport, scheme) as page:
        assets: list[Any] = []
        page.on("response", lambda r: assets.append(r) if "/web/v1/" not in r.url else None)
        await log_in(page, cluster)

        await expect(page.locator("#health")).to_contain_text("2/2 nodes ready")
        for name in (a, b):
            await expect(node_card(page, name)).to_contain_text("Ready")
            await expect(node_card(page, name).locator(".bar.cpu")).to_be_visible()
        await expect(page.locator(f'li.pending[data-node="{pending}"]')).to_contain_text(
            fingerprint)
        await expect(row(page, "workload", scene, "web")).to_contain_text("2/2 ready")
        await expect(row(page, "job", scene, "pi")).to_contain_text("Complete")
        # The crashing pod is failing, and failing pods come first.
        await expect(page.locator("#pods li.pod").first).to_have_attribute(
            "data-name", f"{scene}/crash")
        await expect(row(page, "pod", scene, "crash")).to_have_class(re.compile("failing"))
        link = row(page, "service", scene, "web").locator("a.port").first
        await expect(link).to_have_attribute("href", re.compile(rf"^http://[^/]+:{node_port}$"))
        await expect(page.locator("#events li.warning").first).to_contain_text("Warning")

        await no_overflow(page)
        assert await page.evaluate(LOW_CONTRAST) == []
        if viewport == "phone":
            assert await page.evaluate(SMALL_TARGETS) == []
        await page.screenshot(path=str(shots / f"{viewport}-{scheme}.png"), full_page=True)

        # What the page loaded (the last load's response per path: an earlier load may
        # have been cut short by a network change, see `goto`).
        loaded = {urlsplit(r.url).path: r for r in assets if r.ok}
        assert set(loaded) >= {"/", "/static/app.js", "/static/app.css", "/static/icon.svg"}
        weight = sum([len(await r.body()) for r in loaded.values()])
        assert 0 < weight <= PAGE_BUDGET, f"the page weighs {weight} bytes"
    await cluster.api.request("DELETE", f"/bramble/v1/nodes/{pending}")


async def test_a_kubectl_change_shows_without_reloading(cluster: Cluster, scene: str,
                                                        browser: Any) -> None:
    async with page_of(browser) as page:
        await log_in(page, cluster)
        await expect(row(page, "workload", scene, "web")).to_contain_text("2/2 ready")
        await cluster.kubectl("scale", "-n", scene, "deployment/web", "--replicas=3")
        await expect(row(page, "workload", scene, "web")).to_contain_text("3/3 ready")
        await cluster.kubectl("delete", "-n", scene, "service/web")
        await expect(row(page, "service", scene, "web")).to_have_count(0)
        await cluster.kubectl("cordon", cluster.nodes[0].name)
        try:
            await expect(node_card(page, cluster.nodes[0].name)).to_contain_text("Cordoned")
        finally:
            await cluster.kubectl("uncordon", cluster.nodes[0].name)
        await expect(node_card(page, cluster.nodes[0].name)).not_to_contain_text("Cordoned")
        await cluster.kubectl("scale", "-n", scene, "deployment/web", "--replicas=2")
        await expect(row(page, "workload", scene, "web")).to_contain_text("2/2 ready")
        await no_overflow(page)


async def test_logs_tail_and_follow(cluster: Cluster, scene: str, browser: Any,
                                    shots: Path) -> None:
    pods = await cluster.api.request("GET", pods_path(scene), params={"labelSelector": "app=web"})
    pod = next(p["metadata"]["name"] for p in pods["items"] if not terminating(p))
    async with page_of(browser) as page:
        await log_in(page, cluster)
        await row(page, "pod", scene, pod).locator("button[data-act=logs]").click()
        dialog = page.locator("#logs")
        await expect(dialog).to_be_visible()
        await expect(page.locator("#logs-text")).to_contain_text("tick")
        await expect(page.locator("#logs-state")).to_contain_text("Following")
        ticks = re.findall(r"tick (\d+)", await page.locator("#logs-text").inner_text())
        # Following: a line printed after the dialog opened arrives.
        await expect(page.locator("#logs-text")).to_contain_text(f"tick {int(ticks[-1]) + 2}")
        await page.screenshot(path=str(shots / "phone-light-logs.png"))
        await no_overflow(page)
        await page.locator("#logs-follow").uncheck()
        await expect(page.locator("#logs-state")).to_contain_text("last 200 lines")
        await expect(page.locator("#logs-text")).to_contain_text("tick")
        await page.keyboard.press("Escape")
        await expect(dialog).to_be_hidden()


async def test_each_action_end_to_end(cluster: Cluster, ns: str, browser: Any,
                                      shots: Path) -> None:
    b = cluster.nodes[1].name
    await cluster.kubectl("apply", "-n", ns, "-f", "-", stdin=DEPLOYMENT.format(name="app", replicas=2))
    await cluster.kubectl("rollout", "status", "-n", ns, "deployment/app", "--timeout=120s")
    pending, fingerprint = await pending_request(cluster)
    deploys = apps_path(ns, "deployments")
    async with page_of(browser, "phone", "dark") as page:
        await log_in(page, cluster)
        card = node_card(page, b)
        try:
            # Cordon, by keyboard only.
            await card.locator("button[data-act=cordon]").focus()
            await page.keyboard.press("Enter")
            await wait_for(cluster.api, NODES, f"{b} cordoned",
                           lambda nodes: nodes[b]["spec"].get("unschedulable") is True)
            await expect(card).to_contain_text("Cordoned")
            await card.locator("button[data-act=uncordon]").click()
            await wait_for(cluster.api, NODES, f"{b} uncordoned",
                           lambda nodes: not nodes[b]["spec"].get("unschedulable"))
            await expect(card.locator("button[data-act=cordon]")).to_be_visible()

            # Scale in its dialog.
            app = row(page, "workload", ns, "app")
            await app.locator("button[data-act=scale]").click()
            await expect(page.locator("#scale")).to_be_visible()
            await page.locator("#replicas-up").click()
            await expect(page.locator("#replicas")).to_have_value("3")
            await page.locator("#scale button[value=ok]").click()
            await wait_for(cluster.api, deploys, "app scaled to 3",
                           lambda ds: ds["app"]["spec"]["replicas"] == 3)
            await expect(app).to_contain_text("3/3 ready")
            await expect(page.locator("#flash")).not_to_be_empty()

            # Rollout restart, confirmed.
            await app.locator("button[data-act=restart]").click()
            await expect(page.locator("#confirm")).to_contain_text(f"Restart {ns}/app?")
            await page.screenshot(path=str(shots / "phone-dark-confirm.png"))
            await page.locator("#confirm-ok").click()
            await wait_for(cluster.api, deploys, "app restarted", lambda ds: (
                ds["app"]["spec"]["template"]["metadata"].get("annotations") or {}).get(
                    "kubectl.kubernetes.io/restartedAt"))
            await cluster.kubectl("rollout", "status", "-n", ns, "deployment/app",
                                  "--timeout=120s")

            # Delete a pod: confirmed by keyboard (Cancel has the focus; Tab, Enter).
            listed = await cluster.api.request("GET", pods_path(ns))
            victim = next(p for p in listed["items"] if not terminating(p))
            name, uid = victim["metadata"]["name"], victim["metadata"]["uid"]
            await row(page, "pod", ns, name).locator("button[data-act=delete-pod]").click()
            await expect(page.locator("#confirm")).to_contain_text(f"Delete pod {ns}/{name}?")
            await expect(page.locator("#confirm button[value=cancel]")).to_be_focused()
            await page.keyboard.press("Tab")
            await page.keyboard.press("Enter")
            await wait_for(cluster.api, pods_path(ns), f"pod {name} deleted", lambda pods: (
                name not in pods or pods[name]["metadata"]["uid"] != uid
                or terminating(pods[name])))
            await expect(row(page, "pod", ns, name)).to_have_count(0)

            # Approve a pending node after reading its fingerprint.
            await page.locator(f'li.pending[data-node="{pending}"] button').click()
            await expect(page.locator("#confirm")).to_contain_text(fingerprint)
            await page.locator("#confirm-ok").click()
            await expect(page.locator(f'li.pending[data-node="{pending}"]')).to_have_count(0)
            listed = await cluster.api.request("GET", PENDING)
            assert [r["approved"] for r in listed["items"] if r["name"] == pending] == [True]

            # Drain: cordoned, every pod of the test moved off the node.
            await card.locator("button[data-act=drain]").click()
            await expect(page.locator("#confirm")).to_contain_text(f"Drain {b}?")
            await page.locator("#confirm-ok").click()
            await wait_for(cluster.api, NODES, f"{b} cordoned by the drain",
                           lambda nodes: nodes[b]["spec"].get("unschedulable") is True)
            await wait_for(cluster.api, pods_path(ns), f"no pod of {ns} left on {b}", lambda pods:
                           not [p for p in pods.values() if p["spec"].get("nodeName") == b
                                and not terminating(p)])
            await cluster.kubectl("rollout", "status", "-n", ns, "deployment/app",
                                  "--timeout=120s")
            await expect(app).to_contain_text("3/3 ready")
            await expect(card).to_contain_text("Cordoned")
            assert await page.locator("#notice").is_hidden()
            await no_overflow(page)
        finally:
            await cluster.kubectl("uncordon", b)
            with contextlib.suppress(NotFound):
                await cluster.api.request("DELETE", f"/bramble/v1/nodes/{pending}")


async def test_a_failed_action_shows_the_apis_error(cluster: Cluster, ns: str,
                                                    browser: Any, shots: Path) -> None:
    await cluster.kubectl("apply", "-n", ns, "-f", "-", stdin=DEPLOYMENT.format(name="doomed", replicas=0))
    async with page_of(browser, "phone", "light") as page:
        await log_in(page, cluster)
        doomed = row(page, "workload", ns, "doomed")
        await doomed.locator("button[data-act=restart]").click()
        await expect(page.locator("#confirm")).to_be_visible()
        # The deployment goes while the question is open; the page re-renders without it
        # and keeps the dialog.
        await cluster.api.request("DELETE", f"{apps_path(ns, 'deployments')}/doomed")
        await expect(doomed).to_have_count(0)
        await expect(page.locator("#confirm")).to_be_visible()
        await page.locator("#confirm-ok").click()
        notice = page.locator("#notice")
        await expect(notice).to_be_visible()
        await expect(notice).to_contain_text(f"Restarting {ns}/doomed failed")
        await expect(notice).to_contain_text("not found")
        await page.screenshot(path=str(shots / "phone-light-error.png"))
        await page.locator("#notice-close").click()
        await expect(notice).to_be_hidden()


async def test_one_time_link_csrf_and_logout(cluster: Cluster, browser: Any) -> None:
    link = await cluster.api.request("POST", "/bramble/v1/dashboard/links")
    path = urlsplit(link["url"]).path
    assert path.startswith("/web/v1/login/") and link["expiresAt"]
    async with page_of(browser, "desktop") as page:
        await page.goto(cluster.master.url + path)
        await expect(page.locator("#health")).to_contain_text("nodes ready")
        assert urlsplit(page.url).path == "/"

        # An action without the CSRF header is refused; with it, it passes.
        refused = await page.evaluate("""async (node) => (await fetch('/web/v1/actions/cordon', {
            method: 'POST', headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({node})})).status""", cluster.nodes[0].name)
        assert refused == 403
        nodes = await cluster.api.request("GET", f"{NODES}/{cluster.nodes[0].name}")
        assert not nodes["spec"].get("unschedulable")

        await page.locator("#logout").click()
        await expect(page.locator("#login")).to_be_visible()
        session = await page.evaluate("async () => (await fetch('/web/v1/session')).json()")
        assert session["authenticated"] is False
        assert await page.evaluate("async () => (await fetch('/web/v1/view')).status") == 401

    async with page_of(browser, "phone") as page:  # the link works once
        await page.goto(cluster.master.url + path)
        await expect(page.locator("#login-expired")).to_be_visible()
        await expect(page.locator("#login")).to_be_visible()
        assert urlsplit(page.url).query == ""  # the page tidied its address
        await page.locator("#token").fill("not-the-token")
        await page.keyboard.press("Enter")
        await expect(page.locator("#login-error")).to_contain_text("Login failed")


async def test_reconnecting_then_login_after_a_master_restart(cluster: Cluster,
                                                              browser: Any) -> None:
    """Sessions live in the master's memory: after a restart the page says it reconnects,
    then asks to log in again (the event stream answers 401)."""
    async with page_of(browser) as page:
        await log_in(page, cluster)
        cluster.master.kill()
        try:
            await expect(page.locator("#conn")).to_have_attribute("data-state", "reconnecting")
            await expect(page.locator("#conn")).to_contain_text("Reconnecting")
        finally:
            await cluster.master.start()
        await expect(page.locator("#login")).to_be_visible()
        await log_in(page, cluster)
        await cluster.wait_nodes_ready(n.name for n in cluster.nodes)

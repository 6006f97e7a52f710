"""Notebook 06 in a real JupyterLab, driven by headless Chromium: run it and take a screenshot.

Starts JupyterLab on 127.0.0.1 with a random token on a temporary copy of the notebook (so the
repository's stripped notebook is never saved over), opens ``06_live_demo.ipynb`` in Chromium through
Playwright, runs all cells from the Run menu, waits until the live widget shows probability bars,
and saves a screenshot of that cell (default ``figures/jupyterlab_live_demo.png``). It checks that the widget
rendered (the start/stop buttons and the emotion bars are in the page) and prints what it saw.

Needs Chromium (Debian: ``apt-get install chromium``) and Playwright's Python package
(``pip install playwright``; no browser download: the system Chromium is used).

    python benchmarks/jupyterlab_screenshot.py [--chromium /usr/bin/chromium] [--out PNG] [--wait 12]
"""
from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_lab(port: int, token: str, log: Path, folder: Path) -> subprocess.Popen:
    """JupyterLab serving ``folder`` with fresh workspace and settings folders (no state carried over)."""
    settings = folder / ".settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={folder}",
           f"--LabApp.workspaces_dir={folder / '.workspaces'}", f"--LabApp.user_settings_dir={folder / '.settings'}",
           "--ServerApp.disable_check_xsrf=True", "--LabApp.news_url=", "--LabApp.check_for_updates_class="
           "jupyterlab.NeverCheckForUpdate"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log.parent.mkdir(parents=True, exist_ok=True)
    lab = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(log, "w"), start_new_session=True)
    url = f"http://127.0.0.1:{port}/api/status?token={token}"
    for _ in range(120):
        try:
            urllib.request.urlopen(url, timeout=1)
            return lab
        except OSError:
            time.sleep(0.5)
    lab.kill()
    raise RuntimeError("JupyterLab did not start within 60 s")


def step(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--out", default=str(ROOT / "figures" / "jupyterlab_live_demo.png"))
    parser.add_argument("--wait", type=float, default=12.0, help="seconds of streaming before the screenshot")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    port, token = free_port(), secrets.token_hex(16)
    folder = Path(tempfile.mkdtemp(prefix="ser-jupyterlab-"))  # a copy: the lab saves what it runs
    log = folder / "jupyterlab.log"
    shutil.copy(ROOT / "notebooks" / "06_live_demo.ipynb", folder)
    lab = start_lab(port, token, log, folder)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, headless=True, args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/lab/tree/06_live_demo.ipynb?token={token}")
            step("JupyterLab started; opening notebook 06")
            page.wait_for_selector(".jp-Notebook", timeout=120_000)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
            page.click("div.lm-MenuBar-itemLabel:text-is('Run')")
            page.click("li.lm-Menu-item:has-text('Run All Cells')")
            step("running all cells")
            # the widget rendered (attached: JupyterLab hides cells scrolled out of view)
            page.wait_for_selector("button:has-text('start')", state="attached", timeout=600_000)
            step("the widget rendered; waiting for speech")
            cell = page.locator(".jp-Cell:has(.widget-vbox)").first
            cell.evaluate("e => e.scrollIntoView({block: 'start'})")
            bars = page.locator(".widget-hprogress")
            current = page.locator(".widget-html-content").first
            emotions = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
            deadline = time.time() + args.wait
            shown = ""
            while time.time() < deadline:  # until the stream is inside speech, with bars up
                shown = current.inner_text().strip()
                if shown.split()[0] in emotions and time.time() > deadline - args.wait / 2:
                    break
                time.sleep(0.25)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            step(f"taking the screenshot ({shown.splitlines()[0] if shown else 'nothing'} shown)")
            cell.screenshot(path=args.out, animations="disabled", timeout=60_000)  # the cell: code and panel
            count = bars.count()
            browser.close()
        print(f"widget rendered: {count} probability bars; shown at the screenshot: {shown!r}")
        print(f"screenshot: {args.out}")
        if count == 0 or not shown:
            sys.exit("the widget did not render its bars")
    except BaseException:
        print("JupyterLab's log (last lines):\n" + "\n".join(log.read_text().splitlines()[-30:]), file=sys.stderr)
        raise
    finally:
        os.killpg(lab.pid, signal.SIGTERM)
        lab.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

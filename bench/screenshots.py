"""Screenshots of the review page and the HTML report for docs/REVIEW.md.

  python bench/screenshots.py

Runs mdfs on the bundled samples with the candidate store, draws a sample,
serves the review page in this process, judges items with the keyboard in
headless Chromium (Debian's chromium + chromium-driver) at 1280x800 until a
dropped document with removed lines is on screen (so the bar shows the
actions, the pending label and the last save), and saves
docs/review_page.png and docs/report_page.png.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from werkzeug.serving import make_server

    from mdfs.pipeline.commands.review import draw_sample
    from mdfs.pipeline.commands.review_app import create_app

    work = Path(tempfile.mkdtemp(prefix="mdfs-shots-"))
    run = work / "out"
    subprocess.run([sys.executable, "-m", "mdfs.pipeline.commands.cli", "run", "--output", str(run), "--set",
                    "output.candidates=true"], check=True, capture_output=True)
    draw_sample(str(run), 5, 0)
    app = create_app(str(run), "screenshot-token", "alice", ["high", "low", "ad"], {"127.0.0.1", "localhost"})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    profile = tempfile.mkdtemp(prefix="mdfs-shots-chromium-")
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              f"--user-data-dir={profile}", "--window-size=1280,800", "--lang=zh-CN"):
        opts.add_argument(a)
    drv = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    # the window's size is not the page's: make the viewport exactly 1280x800
    drv.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                        {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False})
    try:
        drv.get(f"http://127.0.0.1:{server.server_port}/?token=screenshot-token")
        while drv.execute_script("return document.getElementById('app').dataset.ready") != "1":
            time.sleep(0.1)
        for n in range(40):  # judge until a dropped document with removed lines is shown
            if n >= 3 and drv.execute_script("return document.getElementById('removed').children.length > 0"):
                break
            ActionChains(drv).send_keys(("1c", "w", "3u")[n % 3]).perform()
            time.sleep(0.5)
        ActionChains(drv).send_keys("2").perform()  # a pending class label, shown in the bar
        time.sleep(0.2)
        drv.save_screenshot(str(REPO / "docs" / "review_page.png"))
        drv.get((run / "report" / "index.html").as_uri())
        time.sleep(0.5)
        drv.save_screenshot(str(REPO / "docs" / "report_page.png"))
    finally:
        drv.quit()
        server.shutdown()
        shutil.rmtree(profile, ignore_errors=True)
    print("docs/review_page.png, docs/report_page.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())

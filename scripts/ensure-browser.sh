#!/bin/sh
# Install Debian's Chromium for the browser tests (tests/web/test_web_browser.py) when it is
# missing and we are root; otherwise do nothing (the tests then skip with a reason).
set -e
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" != "0" ]; then echo "ensure-browser: chromium missing and not root; browser tests will skip"; exit 0; fi
if ! command -v apt-get >/dev/null 2>&1; then echo "ensure-browser: no apt-get; browser tests will skip"; exit 0; fi
apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null

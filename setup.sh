#!/usr/bin/env bash
# Sets up everything cvhub needs on a fresh machine, from the project's own files only:
# a virtualenv with the pinned requirements, cvhub itself (editable), OpenSSH's sshd/sftp
# (Debian packages; the SFTP tests and benchmark run against a real sshd on loopback) and
# LibreOffice Calc headless (Debian; the injection tests open the finance package in it).
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3.11}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.cvhub-requirements.sha256
want=$(sha256sum requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
  echo "$want" > "$stamp"
  rm -f .venv/.cvhub-build.sha256
fi
# cvhub itself, editable, with the Cython accelerators of mappings/ compiled in place against the
# lxml just installed (no build isolation: the headers must be that lxml's). Rebuilt when they change.
build_stamp=.venv/.cvhub-build.sha256
build_want=$(cat setup.py mappings/*.pyx mappings/*.pxd | sha256sum | cut -d' ' -f1)
if [ ! -f "$build_stamp" ] || [ "$(cat "$build_stamp")" != "$build_want" ] \
   || ! ls mappings/_camt_accel.*.so mappings/_mt940_accel.*.so >/dev/null 2>&1; then
  .venv/bin/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
  echo "$build_want" > "$build_stamp"
fi
if ! command -v /usr/sbin/sshd >/dev/null 2>&1 || ! command -v sftp >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing openssh-server and openssh-client (Debian) for the SFTP tests" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server openssh-client >/dev/null
  else
    echo "setup: OpenSSH sshd not found and cannot install it (not root / no apt-get): sshd tests will skip" >&2
  fi
fi
mkdir -p /run/sshd 2>/dev/null || true
# LibreOffice Calc without a GUI (about 25 s from the Debian mirror, apt-get update included):
# tests/recon/test_injection*.py import the finance package's CSV/XLSX into it and check that
# nothing evaluates. Without it those tests skip locally and fail under CI=true.
if ! command -v soffice >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing libreoffice-calc-nogui (Debian) for the spreadsheet-injection tests" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libreoffice-calc-nogui >/dev/null
  else
    echo "setup: LibreOffice (soffice) not found and cannot install it (not root / no apt-get): injection tests will skip" >&2
  fi
fi
# Contract review: Tesseract with its simplified-Chinese model (OCR of scans) and the traditional one
# (second reading of capital amounts: chi_sim lacks 叁柒捌仟), and a TrueType CJK font (the contract
# corpus is rendered with it), from Debian; nothing is downloaded at run time.
if ! command -v tesseract >/dev/null 2>&1 || [ ! -f /usr/share/tesseract-ocr/5/tessdata/chi_sim.traineddata ] \
   || [ ! -f /usr/share/tesseract-ocr/5/tessdata/chi_tra.traineddata ] \
   || [ ! -f /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing tesseract-ocr, tesseract-ocr-chi-sim, -chi-tra and fonts-wqy-zenhei (Debian) for contract review" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tesseract-ocr tesseract-ocr-chi-sim tesseract-ocr-chi-tra \
      fonts-wqy-zenhei >/dev/null
  else
    echo "setup: tesseract/chi_sim/chi_tra or the CJK font missing and cannot install them (not root / no apt-get): OCR tests will skip" >&2
  fi
fi

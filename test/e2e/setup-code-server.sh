#!/usr/bin/env bash
# Installs code-server 4.100.3 (VS Code 1.100.3, the newest that runs on Node 20) into a cache directory, offline
# except for npm and Debian. npm's own install is not enough here: dependency install scripts are blocked by
# default and code-server's postinstall downloads ripgrep from GitHub, so the postinstall steps are done by hand
# (recipe in shared/facts/vscode-jupyter.md §3.2). Idempotent: exits at once when the install is complete.
set -euo pipefail
dir="${1:-${RGPU_E2E_CACHE:-$HOME/.cache/remote-gpu-e2e}/code-server}"
vsdir="$dir/node_modules/code-server/lib/vscode"
if [ -f "$dir/.complete" ]; then echo "$dir"; exit 0; fi
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
need=""
for p in libkrb5-dev pkg-config chromium; do dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"; done
if [ -n "$need" ]; then
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need >/dev/null
fi
mkdir -p "$dir"
cd "$dir"
echo '{"name":"rgpu-e2e-code-server","version":"1.0.0","private":true,"allowScripts":{"argon2":true,"code-server":false}}' > package.json
npm install --no-audit --no-fund code-server@4.100.3 >&2
cd "$vsdir"
node -e 'const f=require("fs"),p=JSON.parse(f.readFileSync("package.json"));p.allowScripts={"node-pty":true,"@parcel/watcher":true,"@vscode/spdlog":true,"kerberos":true,"native-watchdog":true,"@vscode/deviceid":true,"@vscode/ripgrep":false,"@vscode/windows-process-tree":false,"@vscode/windows-registry":false};f.writeFileSync("package.json",JSON.stringify(p,null,2))'
npm_config_yes=true npm install --no-audit --no-fund --omit=dev >&2
tmp=$(mktemp -d)
(cd "$tmp" && npm pack -q @vscode/ripgrep-linux-x64@1.18.0 >/dev/null && tar xzf vscode-ripgrep-linux-x64-1.18.0.tgz package/bin/rg)
mkdir -p node_modules/@vscode/ripgrep/bin && mv "$tmp/package/bin/rg" node_modules/@vscode/ripgrep/bin/rg
rm -rf "$tmp"
ln -sfn node_modules node_modules.asar
(cd bin/remote-cli && ln -sfn code-linux.sh code-server) || true
(cd bin/helpers && ln -sfn browser-linux.sh browser.sh) || true
(cd extensions && npm install --no-audit --no-fund --omit=dev >&2)
touch "$dir/.complete"
echo "$dir"

#!/usr/bin/env bash
# Installs (as root) or checks (as anyone else) the Debian packages the
# build and the tests need. Idempotent: with everything present it only
# checks. crates.io is unreachable here, so the Rust crates are Debian's
# librust-*-dev packages (see .cargo/config.toml).
set -euo pipefail

packages=(
  # Rust crates for passt-core / passt-node (and their test dependencies)
  librust-libc-dev librust-nix-dev librust-proptest-dev
  # proptest's default features (bit-set, regex-syntax...): only
  # "recommended" by librust-proptest-dev, and we install without those
  librust-proptest+default-dev
  librust-netlink-packet-route-dev
  # linker, and libFuzzer's runtime for scripts/fuzz.sh
  build-essential libclang-rt-14-dev
  # namespaces and test peers
  iproute2 util-linux iperf3 curl iputils-ping busybox-static
  isc-dhcp-client dnsutils tcpdump socat python3
  # reference implementations (man pages, benchmarks)
  passt slirp4netns
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup-deps: missing packages; as root run:" >&2
    echo "apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "setup-deps: installed ${missing[*]}"
fi

# pasta opens /dev/net/tun as an ordinary user, inside its namespaces. udev
# makes it 0666 on a standard system; machines without udev leave it 0600,
# which no unprivileged namespace can open.
if [[ -c /dev/net/tun && $(stat -c %a /dev/net/tun) != 666 ]]; then
  if [[ $(id -u) -eq 0 ]]; then
    chmod 0666 /dev/net/tun
    echo "setup-deps: /dev/net/tun made 0666 (as udev does)"
  else
    echo "setup-deps: /dev/net/tun is not world-accessible; pasta needs it (as root: chmod 0666 /dev/net/tun)" >&2
  fi
fi

for tool in cargo rustc node npm; do
  if ! command -v "$tool" >/dev/null; then
    echo "setup-deps: '$tool' not found: install a Rust toolchain (rustup) and Node.js >= 20.17" >&2
    exit 1
  fi
done
echo "setup-deps: all ${#packages[@]} packages present"

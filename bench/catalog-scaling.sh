#!/usr/bin/env bash
# bench/catalog-scaling.sh: the catalog-size scaling of the load benchmark (issue 8; see
# docs/PERFORMANCE.md). The tool catalog is compiled in from the manifest by build.rs, so every
# size needs a gateway binary of its own.
#
#   export CARGO_TARGET_DIR=target                      # default: target (in the repository)
#   bench/catalog-scaling.sh                            # sizes 51 (the real catalog), 200, 500
#   SIZES="51 500" bench/catalog-scaling.sh --seconds 1.5 --mode stateless
#
# Arguments are passed to every `flowgate-load` run (do not pass --json: each size would
# overwrite the file). Steps:
#
#   1. `cargo build --release -p flowgate -p flowgate-load` (the normal build, manifest/).
#   2. For each size N: `flowgate-load fixture-manifest --tools N` writes a temporary copy of
#      manifest/ plus N - 51 generated read tools `bench_tool_NNNN` (modelled on get_class, with
#      the scopes and tiers of the real read tools, so Cedar's action groups grow) and checks it
#      as build.rs does; `FLOWGATE_MANIFEST_DIR=<fixture> cargo build --release --bin flowgate`
#      compiles it in (an invalid manifest fails the build) and the binary is copied to
#      $CARGO_TARGET_DIR/catalog/flowgate-N. The real size needs no build: it is step 1's binary.
#   3. The normal `flowgate` is built again (no FLOWGATE_MANIFEST_DIR), so the target directory
#      is left as it was.
#   4. Only then, with no build running, each binary is measured in turn:
#      `flowgate-load --flowgate $CARGO_TARGET_DIR/catalog/flowgate-N --scaling catalog`
#      (fast upstream; read get_class at 1 and 32, tools/list at 32, stateful and stateless;
#      rows labelled with the number of tools the gateway lists).
#
# Each fixture build is one release build of the flowgate crate (a few minutes on two cores);
# each measurement is about 30 s with the default 2.5 s per case. Loopback only; flowgate-load
# bounds every case in time and kills its children. The fixtures live in a temporary directory
# removed on exit; the binaries stay in $CARGO_TARGET_DIR/catalog/.
set -euo pipefail

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR
CARGO_TARGET_DIR="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
read -r -a sizes <<<"${SIZES:-51 200 500}"
release="$CARGO_TARGET_DIR/release"
bins="$CARGO_TARGET_DIR/catalog"
load="$release/flowgate-load"

for n in "${sizes[@]}"; do
  [[ "$n" =~ ^[0-9]+$ ]] || { echo "SIZES: \`$n\` is not a number" >&2; exit 2; }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/flowgate-catalog.XXXXXX")"
restored=no
cleanup() {
  rm -rf "$work"
  if [[ $restored == no ]]; then
    echo "catalog-scaling: stopped before the normal build was restored; run" \
      "\`cargo build --release --bin flowgate\` (without FLOWGATE_MANIFEST_DIR)" >&2
  fi
}
trap cleanup EXIT

started=$SECONDS
echo "== build: the normal flowgate and flowgate-load"
env -u FLOWGATE_MANIFEST_DIR cargo build --release -p flowgate -p flowgate-load
cp "$release/flowgate" "$work/flowgate-real"
mkdir -p "$bins"

for n in "${sizes[@]}"; do
  fixture="$work/manifest-$n"
  "$load" fixture-manifest --tools "$n" --out "$fixture"
  if [[ ! -e "$fixture/bench_tools.yaml" ]]; then
    # Nothing generated: the real catalog, which step 1 built.
    cp "$work/flowgate-real" "$bins/flowgate-$n"
    continue
  fi
  echo "== build: flowgate with $n tools (FLOWGATE_MANIFEST_DIR=$fixture)"
  t=$SECONDS
  FLOWGATE_MANIFEST_DIR="$fixture" cargo build --release --bin flowgate
  cp "$release/flowgate" "$bins/flowgate-$n"
  echo "== built flowgate-$n in $((SECONDS - t)) s"
done

echo "== build: the normal flowgate again (restores the target directory)"
env -u FLOWGATE_MANIFEST_DIR cargo build --release -p flowgate -p flowgate-load
restored=yes
echo "== builds took $((SECONDS - started)) s"

for n in "${sizes[@]}"; do
  echo
  echo "== measure: $bins/flowgate-$n"
  t=$SECONDS
  "$load" --flowgate "$bins/flowgate-$n" --scaling catalog "$@"
  echo "== measured $n tools in $((SECONDS - t)) s"
done
echo
echo "== catalog scaling took $((SECONDS - started)) s in all"

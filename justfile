# raft-lab: the Raft lab (MIT 6.824 / 6.5840, parts 2A-2D) and its key/value service (3A-3B) as
# real processes over UDP, every datagram passing through netproxy. `just` alone lists the recipes.

set positional-arguments

# Where cargo puts what it builds: CARGO_TARGET_DIR, a target-dir in cargo's config, else target/.
target := `dir=$(cargo metadata --no-deps --format-version 1 2>/dev/null | grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4); echo "${dir:-${CARGO_TARGET_DIR:-target}}"`
bin := target / "debug"
release := target / "release"

# netproxy for the running cluster: its control is the cluster's base port + 200
# (RAFT_LAB_BASE_PORT, as `raft-lab` reads it; default 7000) unless NETPROXY_CONTROL says.
netproxy := 'NETPROXY_CONTROL="${NETPROXY_CONTROL:-127.0.0.1:$((${RAFT_LAB_BASE_PORT:-7000} + 200))}" "' + bin / 'netproxy"'

# List every recipe
default:
    @just --list --unsorted

# Build every binary: raft-node, netproxy and the harness tools
build:
    @cargo build --quiet --workspace --bins

# Run every test: unit tests, netproxy's tests and the lab's suite (cargo-nextest, installed if missing)
test *ARGS: build
    #!/usr/bin/env bash
    set -euo pipefail
    if ! cargo nextest --version >/dev/null 2>&1; then
        echo "just test: cargo-nextest is missing; installing it (cargo install cargo-nextest --locked)" >&2
        if ! cargo install cargo-nextest --locked; then
            echo "just test: cargo-nextest could not be installed; running cargo test instead (one test binary at a time, no per-test timeout)" >&2
            exec cargo test --workspace "$@"
        fi
    fi
    exec cargo nextest run --workspace "$@"

# Run the tests matching TESTS (a regex, as Go's -run) N times each, P at a time (-p P); keeps failed runs' logs
stress TESTS N *ARGS: build
    @"{{bin}}"/raft-stress "$@"

# Run the lab 2 suite once, one test at a time; each test's seconds and RPCs beside the Go lab's (`--runs N`: medians of N runs; `--json`)
lab-report *ARGS: build
    @"{{bin}}"/raft-lab-report "$@"

# Run N nodes (default 5) and netproxy in the foreground (`--dashboard`, `--netns`: a network namespace per node, `--base-port P`; `--groups N [--join]`: a sharded KV); Ctrl-C stops them all
cluster *ARGS: build
    @RUST_LOG="${RUST_LOG:-info}" "{{bin}}"/raft-lab cluster "$@"

# Table of the running cluster's nodes: role, term, leader, commit, applied, log, snapshot, disk (`--json`)
status *ARGS: build
    @"{{bin}}"/raft-lab status "$@"

# Live table of the running cluster every 200 ms: nodes, faults, link traffic (`--once`: one frame)
watch *ARGS: build
    @"{{bin}}"/raft-lab watch "$@"

# The running cluster live in a browser on 127.0.0.1:7800 (`--port P`): nodes, network, events, controls
dashboard *ARGS: build
    @"{{bin}}"/raft-lab dashboard "$@"

# Screenshot the dashboard (README's docs/dashboard.png) on a 5-node cluster it starts on the usual ports: a follower and then the leader cut off
dashboard-shot OUT="docs/dashboard.png": build
    #!/usr/bin/env bash
    set -euo pipefail
    out=$(realpath -m "$1")
    dir=$(mktemp -d)
    url=http://127.0.0.1:7800
    RUST_LOG=warn "{{bin}}"/raft-lab cluster 5 --data-dir "$dir" --dashboard >"$dir/cluster.log" 2>&1 &
    cluster=$!
    trap 'kill "$cluster" 2>/dev/null; wait "$cluster" 2>/dev/null; rm -rf "$dir"' EXIT
    state() { curl -sf "$url/api/state"; }
    # Waits until the jq test $1 holds of the dashboard's state (30 s at most).
    until_state() {
        for _ in $(seq 150); do
            if state 2>/dev/null | jq -e "$1" >/dev/null 2>&1; then return; fi
            sleep 0.2
        done
        echo "just dashboard-shot: no $2 within 30 s; the cluster's log:" >&2
        tail -20 "$dir/cluster.log" >&2
        exit 1
    }
    # A control of the page, as its buttons post it.
    control() { curl -sf -H 'X-Raft-Lab: 1' --data "$2" "$url/api/$1" >/dev/null; }
    until_state '.view.leader != null' leader
    for key in a b c; do control kv "put $key 1"; done
    leader=$(state | jq .view.leader)
    term=$(state | jq .view.term)
    # A follower misses the next puts; then the leader is cut off with two commands it cannot
    # commit, and the rest elect a leader of a later term that commits more.
    lagging=$(( (leader + 1) % 5 ))
    control proxy "disconnect $lagging"
    for key in d e; do control kv "put $key 2"; done
    control proxy "disconnect $leader"
    for text in x y; do
        "{{bin}}"/raft-node ctl --control "127.0.0.1:$((7300 + leader))" --secret-file "$dir/secret" \
            submit "$text" >/dev/null
    done
    until_state ".view.leader != null and .view.leader != $leader and .view.term > $term" "new leader"
    for key in f g h; do control kv "put $key 3"; done
    sleep 1.2 # a whole window of the traffic rates since the election
    # Headless Chromium through chromedriver (as the browser test drives it), so the shot waits
    # for the page to draw its first frame.
    driver=http://127.0.0.1:7899
    chromedriver --port=7899 >"$dir/chromedriver.log" 2>&1 &
    chromedriver=$!
    trap 'kill "$cluster" "$chromedriver" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
    for _ in $(seq 50); do curl -sf "$driver/status" >/dev/null && break; sleep 0.2; done
    session=$(curl -sf "$driver/session" -d '{"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
        "binary": "/usr/bin/chromium", "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
        "--hide-scrollbars", "--window-size=1500,960", "--force-device-scale-factor=0.9"]}}}}' | jq -r .value.sessionId)
    webdriver() { curl -sf "$driver/session/$session/$1" ${2:+-d "$2"}; }
    webdriver url "{\"url\": \"$url/\"}" >/dev/null
    drawn='{"script": "return document.getElementById(\"answering\").textContent", "args": []}'
    for _ in $(seq 50); do [ "$(webdriver execute/sync "$drawn" | jq -r .value)" = 5/5 ] && break; sleep 0.2; done
    webdriver screenshot | jq -r .value | base64 -d >"$out"
    curl -sf -X DELETE "$driver/session/$session" >/dev/null
    echo "just dashboard-shot: $out ($(stat -c %s "$out") bytes)"

# Submit TEXT as a command through the running cluster's leader (`--json`)
submit TEXT *ARGS: build
    @"{{bin}}"/raft-lab submit "$@"

# Hand leadership to node N (Raft thesis §3.10): the leader catches N up, then N takes over
transfer N: build
    @"{{bin}}"/raft-lab transfer {{N}}

# Start a node on the next id, add it as a learner, promote it once caught up (Raft thesis §4.2.1)
add-node *ARGS: build
    @"{{bin}}"/raft-lab add-node "$@"

# Take node N out of the configuration (a leader steps down once that commits), then stop it
remove-node N *ARGS: build
    @"{{bin}}"/raft-lab remove-node "$@"

# Replace node N: add a node on the next id (learner, then voter), then remove N
replace-node N *ARGS: build
    @"{{bin}}"/raft-lab replace-node "$@"

# A KV clerk on the running cluster: `just kv put K V`, `just kv append K V`, `just kv get K` (--timeout S)
kv +ARGS: build
    @"{{bin}}"/raft-lab kv "$@"

# The shard controller of a sharded cluster (`just cluster --groups 3`): `just shard join 100 101`, `leave G…`, `move S G`, `query [N]`
shard +ARGS: build
    @"{{bin}}"/raft-lab shard "$@"

# Split the running cluster into groups, e.g. `just partition 0,1 2,3,4`
partition +GROUPS: build
    @{{netproxy}} partition "$@"

# Restore every link and clear every fault
heal: build
    @{{netproxy}} heal

# Cut node N off from all its peers (the lab's disconnect)
disconnect N: build
    @{{netproxy}} disconnect "$1"

# Reconnect node N to the connected nodes (the lab's connect)
connect N: build
    @{{netproxy}} connect "$1"

# Per-link datagram and byte counters of the running proxy
stats *ARGS: build
    @{{netproxy}} stats "$@"

# Any netproxy command, e.g. `just proxy drop 0.2 '0->1'` (quote arrows from your shell)
proxy *ARGS: build
    @{{netproxy}} "$@"

# Read a run's log with a column per node: `just logs run.log -t ELECT,VOTE -n 0,2` (stdin if no FILE)
logs *ARGS:
    @cargo build --quiet -p harness --bin raft-logs
    @"{{bin}}"/raft-logs show "$@"

# Draw a run's log as an HTML timeline (lanes, terms, leaders, commits, crashes, partitions)
timeline FILE *ARGS:
    @cargo build --quiet -p harness --bin raft-logs
    @"{{bin}}"/raft-logs timeline "$@"

# Seeded nemesis campaigns on a KV cluster: `just nemesis --seed 7 --time 60s` (`--seeds N`: N seeds, a failure rate)
nemesis *ARGS: build
    @"{{bin}}"/raft-nemesis "$@"

# Measure netproxy: round-trip latency against a direct socket, and loss-free forwarding rate
bench-proxy:
    @cargo build --quiet --release -p netproxy --bins
    @"{{release}}"/netproxy-bench

# Measure a 3-node cluster through netproxy: throughput, commit latency, failover (`just bench kv`: the KV service)
bench *ARGS:
    @cargo build --quiet --release --workspace --bins
    @"{{release}}"/raft-bench "$@"

# Fuzz a decoder for SECONDS (cargo-fuzz; nightly, else stable), e.g. `just fuzz datagram 600`; prints the runs
fuzz TARGET SECONDS:
    #!/usr/bin/env bash
    set -euo pipefail
    targets=$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -vx raft-lab-fuzz | tr '\n' ' ' | sed 's/ $//')
    if ! [[ " $targets " == *" $1 "* ]]; then
        echo "just fuzz: no target \"$1\"; the targets are: $targets" >&2
        exit 2
    fi
    if ! [[ "$2" =~ ^[1-9][0-9]*$ ]]; then
        echo "just fuzz: SECONDS must be a whole number of seconds above 0, not \"$2\"" >&2
        exit 2
    fi
    # The toolchain: FUZZ_TOOLCHAIN if set (`FUZZ_TOOLCHAIN=stable`), else nightly where rustup has
    # it, else the default one. One that is not nightly gets RUSTC_BOOTSTRAP=1, which lets it take
    # the nightly-only flags cargo-fuzz passes (-Zsanitizer=address and the coverage ones).
    toolchain=${FUZZ_TOOLCHAIN:-}
    if [[ -z "$toolchain" ]] && RUSTUP_AUTO_INSTALL=0 rustc +nightly --version >/dev/null 2>&1; then
        toolchain=nightly
    fi
    plus=()
    if [[ -n "$toolchain" ]]; then
        plus=("+$toolchain")
    fi
    if ! version=$(RUSTUP_AUTO_INSTALL=0 rustc "${plus[@]}" --version 2>&1); then
        echo "just fuzz: no toolchain ${toolchain:-(default)}: ${version%%$'\n'*}" >&2
        exit 2
    fi
    if [[ "$version" == *-nightly* ]]; then
        echo "just fuzz: $1 for $2 s on the nightly toolchain ($version)"
    else
        export RUSTC_BOOTSTRAP=1
        echo "just fuzz: $1 for $2 s on the stable toolchain with RUSTC_BOOTSTRAP=1 ($version)"
    fi
    if ! cargo fuzz --version >/dev/null 2>&1; then
        echo "just fuzz: installing cargo-fuzz (cargo install cargo-fuzz --locked)"
        cargo install cargo-fuzz --locked
    fi
    cargo "${plus[@]}" run --quiet --manifest-path fuzz/Cargo.toml --bin seeds -- "$1" "fuzz/corpus/$1"
    log=$(mktemp)
    trap 'rm -f "$log"' EXIT
    # Limits: an input that allocates 512 MiB, runs 10 s or peaks above 1 GiB RSS is a finding.
    status=0
    cargo "${plus[@]}" fuzz run "$1" "fuzz/corpus/$1" -- -max_total_time="$2" -timeout=10 \
        -malloc_limit_mb=512 -rss_limit_mb=1024 -print_final_stats=1 2>&1 | tee "$log" || status=$?
    echo
    grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true
    grep -E '^Done [0-9]+ runs' "$log" || echo "just fuzz: $1 stopped early: a finding (see above and fuzz/artifacts/$1/) or a build error" >&2
    exit "$status"

# Fuzz every target for SECONDS each, then a table: inputs, inputs/s, edges, corpus, findings (`--json`)
fuzz-all SECONDS *FLAGS:
    @JUST='{{just_executable()}}' python3 fuzz/campaign.py "$@"

# Run N simulator seeds in release (`just sim 5000 --from 10000`); stops at the first failure
sim N="1000" *ARGS:
    @cargo build --quiet --release -p harness --bin raft-sim
    @"{{release}}"/raft-sim "$@"

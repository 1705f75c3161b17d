#!/usr/bin/env bash
# Installs indikator as the systemd service deploy/indikator.service. Run as root from a checkout
# after `cargo build --release`:
#
#   sudo bash deploy/install.sh
#
# Safe to run again (after an upgrade, too): the binary, schemas/ and the unit are replaced;
# the config, the env file (with its token) and pipelines already in /etc/indikator are kept.
# It enables the service but does not start or restart it: `systemctl restart indikator` does.
#
# BIN=path overrides the binary (default target/release/indikator of this checkout).
# ROOT=dir installs below dir instead of / and skips the user and systemctl (for tests).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${BIN:-$REPO/target/release/indikator}
ROOT=${ROOT:-}
# The unit names these paths; tests/it/deploy.rs checks that they agree.
ETC_DIR=/etc/indikator
BIN_PATH=/usr/local/bin/indikator
UNIT_PATH=/etc/systemd/system/indikator.service
SERVICE_USER=indikator

say() { printf 'install: %s\n' "$*"; }
die() { printf 'install: %s\n' "$*" >&2; exit 1; }

[[ -n $ROOT || $EUID -eq 0 ]] || die "run as root: sudo bash deploy/install.sh"
[[ -x $BIN ]] || die "no executable at $BIN; build it first: cargo build --release (or set BIN=)"

if [[ -z $ROOT ]] && ! id -u "$SERVICE_USER" >/dev/null 2>&1; then
    # A system user with no login and no home of its own: systemd's StateDirectory= gives it
    # /var/lib/indikator.
    useradd --system --user-group --home-dir /var/lib/indikator --no-create-home \
        --shell /usr/sbin/nologin "$SERVICE_USER"
    say "created user $SERVICE_USER"
fi

etc=$ROOT$ETC_DIR
install -d -m 0755 "$etc" "$etc/pipelines" "$(dirname "$ROOT$BIN_PATH")" "$(dirname "$ROOT$UNIT_PATH")"
install -m 0755 "$BIN" "$ROOT$BIN_PATH"
say "binary: $BIN_PATH"

# schemas/ is the release's catalogue, areas and code lists: replaced whole, so that a file the
# release removed does not linger (local changes belong in the repository).
rm -rf "$etc/schemas.new"
cp -R "$REPO/schemas" "$etc/schemas.new"
rm -rf "$etc/schemas"
mv "$etc/schemas.new" "$etc/schemas"
say "schemas: $ETC_DIR/schemas"

# Pipelines: the repository's network pipelines (not the offline samples), each only if absent,
# so that an operator's edits survive a reinstall.
for pipeline in "$REPO"/pipelines/*.toml; do
    target=$etc/pipelines/$(basename "$pipeline")
    if [[ ! -e $target ]]; then
        install -m 0644 "$pipeline" "$target"
        say "pipeline: $ETC_DIR/pipelines/$(basename "$pipeline")"
    elif ! cmp -s "$pipeline" "$target"; then
        say "kept $ETC_DIR/pipelines/$(basename "$pipeline") (differs from the repository's)"
    fi
done

if [[ ! -e $etc/indikator.toml ]]; then
    install -m 0644 "$REPO/deploy/indikator.toml" "$etc/indikator.toml"
    say "config: $ETC_DIR/indikator.toml"
else
    say "kept $ETC_DIR/indikator.toml"
fi

# The admin token: generated once, readable by root only (systemd reads it for the service).
if [[ ! -e $etc/env ]]; then
    if command -v openssl >/dev/null 2>&1; then
        token=$(openssl rand -hex 32)
    else
        token=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
    fi
    (
        umask 077
        printf '# Read by systemd for indikator.service (EnvironmentFile=).\nINDIKATOR_ADMIN_TOKEN=%s\nINDIKATOR_LOG=info\n' \
            "$token" >"$etc/env"
    )
    say "env: $ETC_DIR/env with a new admin token (mode 0600)"
else
    say "kept $ETC_DIR/env"
fi
chmod 0600 "$etc/env"

install -m 0644 "$REPO/deploy/indikator.service" "$ROOT$UNIT_PATH"
say "unit: $UNIT_PATH"

if [[ -z $ROOT ]] && command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload
    systemctl enable indikator.service
    say "enabled; start with: systemctl start indikator (or restart, after an upgrade)"
else
    say "systemctl skipped"
fi

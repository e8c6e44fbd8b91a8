#!/bin/bash
# Install dora on this machine from the repository in /opt/dora (run as root).
#
# Called by deploy/user-data/amazon-linux-2023.sh and deploy/user-data/ubuntu-22.04.sh once they
# have installed the OS packages; safe to run again (it keeps an existing /etc/dora/dora.env and
# the Redis password in it). It
#   1. creates the `dora` user; /opt/dora stays root's (read-only to the bot), /opt/dora/var is dora's
#   2. makes /opt/dora/.venv with Python 3.11 and `pip install -c constraints.txt -e /opt/dora`
#   3. configures the local Redis (127.0.0.1 only, requirepass, AOF) unless DORA_REDIS_URL is given
#   4. writes /etc/dora/dora.env (root, 0600): ids, ARNs, URLs; no Kalshi key material
#   5. installs the systemd unit and the operator wrappers (dora, dora-supervisorctl, dora-redis-cli)
#   6. configures the CloudWatch agent to ship var/log/*.log to DORA_LOG_GROUP, if it is installed
#   7. starts dora, unless the Kalshi key id or key source is missing (then it says what to fill in)
#
# `deploy/install.sh env` only prints the dora.env it would write (nothing is changed).
#
# Inputs (environment): the settings below, plus from the OS script DORA_PYTHON (python3.11),
# DORA_REDIS_SERVICE, DORA_REDIS_CONF (the server's main config file) and DORA_REDIS_CLI.
set -euo pipefail

DORA_HOME=${DORA_HOME:-/opt/dora}
ENV_FILE=${DORA_ENV_FILE:-/etc/dora/dora.env}

: "${DORA_KALSHI_ENV:=demo}"
: "${DORA_KALSHI_KEY_ID:=}"
: "${DORA_KALSHI_PRIVATE_KEY_SECRET_ID:=}"
: "${DORA_KALSHI_PRIVATE_KEY_SSM_PARAM:=}"
: "${DORA_AWS_REGION:=}"
: "${DORA_TABLE_PREFIX:=dora_}"
: "${DORA_REDIS_URL:=}"
: "${DORA_REDIS_CA_CERT:=}"
: "${DORA_RATE_TIER:=basic}"
: "${DORA_SNS_TOPIC_ARN:=}"
: "${DORA_METRICS_NAMESPACE:=dora}"
: "${DORA_METRICS_ENABLED:=true}"
: "${DORA_LOG_LEVEL:=info}"
: "${DORA_WEB_TOKEN:=}"
: "${DORA_LOG_GROUP:=/dora}"
: "${DORA_START:=true}"
# past one box (docs/operations.md, Scaling out): ElastiCache in cluster mode and shard hosts
: "${DORA_REDIS_CLUSTER:=}"
: "${DORA_SHARD_COUNT:=}"
: "${DORA_SHARD_INDEX:=}"
: "${DORA_HOST_ROLE:=all}" # all (one box), core (no strategy/executor) or shard (only those)

log() { printf 'dora-install: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

imds_region() {
    local token
    token=$(curl -sf -m 2 -X PUT http://169.254.169.254/latest/api/token \
        -H 'X-aws-ec2-metadata-token-ttl-seconds: 60') || return 1
    curl -sf -m 2 -H "X-aws-ec2-metadata-token: $token" \
        http://169.254.169.254/latest/meta-data/placement/region
}

# The password of the local Redis: the one already in dora.env if any, else a new random one.
redis_password() {
    local old=""
    if [ -f "$ENV_FILE" ]; then
        old=$(sed -n 's|^DORA_REDIS_URL=redis://default:\([0-9a-f]*\)@127\.0\.0\.1:6379/0$|\1|p' "$ENV_FILE")
    fi
    if [ -n "$old" ]; then echo "$old"; else od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; fi
}

# Print dora.env from the settings above. Values are plain tokens (no spaces or quotes), so the
# file reads the same for systemd's EnvironmentFile= and for `set -a; . dora.env` in a shell.
render_env() {
    local name value
    echo "# dora's settings, read by systemd (dora.service) and the /usr/local/bin/dora* wrappers."
    echo "# Written by deploy/install.sh; edit, then: systemctl restart dora. Root only (0600)."
    echo "# No Kalshi key material here: the key is read from Secrets Manager or SSM at start. The"
    echo "# credentials are the password of the local Redis (bound to 127.0.0.1) in DORA_REDIS_URL"
    echo "# and the token every control of the dashboard needs, DORA_WEB_TOKEN."
    for name in DORA_KALSHI_ENV DORA_KALSHI_KEY_ID DORA_KALSHI_PRIVATE_KEY_SECRET_ID \
        DORA_KALSHI_PRIVATE_KEY_SSM_PARAM DORA_AWS_REGION DORA_TABLE_PREFIX DORA_REDIS_URL \
        DORA_REDIS_CA_CERT DORA_RATE_TIER DORA_SNS_TOPIC_ARN DORA_METRICS_NAMESPACE DORA_METRICS_ENABLED \
        DORA_LOG_LEVEL DORA_WEB_TOKEN DORA_REDIS_CLUSTER DORA_SHARD_COUNT DORA_SHARD_INDEX; do
        value=${!name}
        [ -n "$value" ] || continue
        case $value in
            *[!A-Za-z0-9_./:@+=,%-]*) die "$name has a character that is not allowed here: '$value'" ;;
        esac
        echo "$name=$value"
    done
    [ -z "$DORA_AWS_REGION" ] || echo "AWS_DEFAULT_REGION=$DORA_AWS_REGION"
}

check_settings() {
    if [ -n "$DORA_KALSHI_PRIVATE_KEY_SECRET_ID" ] && [ -n "$DORA_KALSHI_PRIVATE_KEY_SSM_PARAM" ]; then
        die "set DORA_KALSHI_PRIVATE_KEY_SECRET_ID or DORA_KALSHI_PRIVATE_KEY_SSM_PARAM, not both"
    fi
    case $DORA_KALSHI_ENV in prod | demo) ;; *) die "DORA_KALSHI_ENV must be prod or demo, was '$DORA_KALSHI_ENV'" ;; esac
    case $DORA_HOST_ROLE in
        all) ;;
        core | shard) [ -n "$DORA_REDIS_URL" ] || die "DORA_HOST_ROLE=$DORA_HOST_ROLE needs the shared DORA_REDIS_URL" ;;
        *) die "DORA_HOST_ROLE must be all, core or shard, was '$DORA_HOST_ROLE'" ;;
    esac
    if [ "$DORA_HOST_ROLE" = shard ] && [ -z "$DORA_SHARD_INDEX" ]; then
        die "DORA_HOST_ROLE=shard needs DORA_SHARD_INDEX"
    fi
}

if [ "${1:-}" = env ]; then
    check_settings
    [ -n "$DORA_REDIS_URL" ] || DORA_REDIS_URL="redis://default:GENERATED@127.0.0.1:6379/0"
    render_env
    exit 0
fi

[ "$(id -u)" = 0 ] || die "run as root"
[ -f "$DORA_HOME/supervisord.conf" ] || die "$DORA_HOME does not hold the dora repository"
: "${DORA_PYTHON:?set by the OS script: the python3.11 binary}"
check_settings
if [ -z "$DORA_AWS_REGION" ]; then
    DORA_AWS_REGION=$(imds_region) || die "DORA_AWS_REGION is not set and the instance metadata does not answer"
fi

# 1. the user; the code stays root's
if ! id dora >/dev/null 2>&1; then
    useradd --system --user-group --home-dir /var/lib/dora --create-home \
        --shell "$(command -v nologin || echo /bin/false)" dora
fi
install -d -o dora -g dora -m 0700 "$DORA_HOME/var" "$DORA_HOME/var/log"

# 2. the virtualenv
log "creating $DORA_HOME/.venv with $("$DORA_PYTHON" --version)"
[ -x "$DORA_HOME/.venv/bin/python" ] || "$DORA_PYTHON" -m venv "$DORA_HOME/.venv"
"$DORA_HOME/.venv/bin/python" -m pip install -q --upgrade pip setuptools wheel
"$DORA_HOME/.venv/bin/python" -m pip install -q -c "$DORA_HOME/constraints.txt" -e "$DORA_HOME"
"$DORA_HOME/.venv/bin/python" -m compileall -q "$DORA_HOME/common" "$DORA_HOME/services" "$DORA_HOME/sim" "$DORA_HOME/cli" >/dev/null

# 3. the local Redis
if [ -z "$DORA_REDIS_URL" ]; then
    : "${DORA_REDIS_SERVICE:?set by the OS script}" "${DORA_REDIS_CONF:?set by the OS script}" "${DORA_REDIS_CLI:?set by the OS script}"
    password=$(redis_password)
    DORA_REDIS_URL="redis://default:$password@127.0.0.1:6379/0"
    conf_dir=$(dirname "$DORA_REDIS_CONF")
    log "configuring $DORA_REDIS_SERVICE: 127.0.0.1 only, requirepass, AOF ($conf_dir/dora.conf)"
    (
        umask 027
        cat >"$conf_dir/dora.conf" <<EOF
# dora's Redis (written by $DORA_HOME/deploy/install.sh; included last by $(basename "$DORA_REDIS_CONF"))
bind 127.0.0.1
protected-mode yes
port 6379
requirepass $password
appendonly yes
appendfsync everysec
# never evict: streams, positions and the halt must not disappear under memory pressure
maxmemory-policy noeviction
EOF
    )
    chown --reference="$DORA_REDIS_CONF" "$conf_dir/dora.conf"
    grep -qxF "include $conf_dir/dora.conf" "$DORA_REDIS_CONF" ||
        printf '\ninclude %s\n' "$conf_dir/dora.conf" >>"$DORA_REDIS_CONF"
    systemctl enable "$DORA_REDIS_SERVICE"
    systemctl restart "$DORA_REDIS_SERVICE"
    for _ in $(seq 1 30); do
        REDISCLI_AUTH=$password "$DORA_REDIS_CLI" -h 127.0.0.1 ping 2>/dev/null | grep -q PONG && break
        sleep 1
    done
    version=$(REDISCLI_AUTH=$password "$DORA_REDIS_CLI" -h 127.0.0.1 info server | sed -n 's/^redis_version:\([0-9.]*\).*/\1/p')
    # XAUTOCLAIM, XTRIM MINID and exclusive XRANGE ranges (the persister, common/streams.py)
    [ "$(printf '%s\n6.2.0\n' "$version" | sort -V | head -n1)" = 6.2.0 ] ||
        die "Redis $version is too old: dora needs 6.2 or newer"
    log "Redis $version answers on 127.0.0.1:6379"
fi

# 4. the settings (the dashboard's token: a new random one unless given)
[ -n "$DORA_WEB_TOKEN" ] || DORA_WEB_TOKEN=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
install -d -o root -g root -m 0700 "$(dirname "$ENV_FILE")"
if [ -f "$ENV_FILE" ]; then
    log "$ENV_FILE exists: kept as it is (the settings of this run are in $ENV_FILE.new)"
    (umask 077 && render_env >"$ENV_FILE.new")
else
    (umask 077 && render_env >"$ENV_FILE")
fi
chmod 0600 "$ENV_FILE"

# 5. the unit and the wrappers
install -m 0644 "$DORA_HOME/deploy/systemd/dora.service" /etc/systemd/system/dora.service
# a core or shard host runs its role's supervisord config (cli/host_confs.py) instead
dropin=/etc/systemd/system/dora.service.d
if [ "$DORA_HOST_ROLE" = all ]; then
    rm -f "$dropin/role.conf"
else
    install -d -m 0755 "$dropin"
    printf '[Service]\nExecStart=\nExecStart=%s/.venv/bin/supervisord -c %s/supervisord-%s.conf -n\n' \
        "$DORA_HOME" "$DORA_HOME" "$DORA_HOST_ROLE" >"$dropin/role.conf"
    log "this host's role: $DORA_HOST_ROLE ($DORA_HOME/supervisord-$DORA_HOST_ROLE.conf)"
fi
for tool in dora dora-supervisorctl dora-redis-cli; do
    install -m 0755 "$DORA_HOME/deploy/bin/$tool" "/usr/local/bin/$tool"
done
systemctl daemon-reload
systemctl enable dora

# 6. logs to CloudWatch
agent_ctl=/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl
if [ -x "$agent_ctl" ]; then
    sed "s|__DORA_LOG_GROUP__|$DORA_LOG_GROUP|g" "$DORA_HOME/deploy/cloudwatch-agent.json" \
        >/opt/aws/amazon-cloudwatch-agent/etc/dora.json
    "$agent_ctl" -a fetch-config -m ec2 -s -c file:/opt/aws/amazon-cloudwatch-agent/etc/dora.json
    log "CloudWatch agent ships $DORA_HOME/var/log/*.log to log group $DORA_LOG_GROUP"
else
    log "no CloudWatch agent: logs stay in $DORA_HOME/var/log"
fi

# 7. start
set -a
# shellcheck source=/dev/null
. "$ENV_FILE"
set +a
if [ -z "${DORA_KALSHI_KEY_ID:-}" ] ||
    [ -z "${DORA_KALSHI_PRIVATE_KEY_SECRET_ID:-}${DORA_KALSHI_PRIVATE_KEY_SSM_PARAM:-}${DORA_KALSHI_PRIVATE_KEY_PATH:-}" ]; then
    log "not started: set DORA_KALSHI_KEY_ID and DORA_KALSHI_PRIVATE_KEY_SECRET_ID (or _SSM_PARAM) in $ENV_FILE, then: systemctl start dora"
elif [ "$DORA_START" = true ]; then
    systemctl restart dora
    log "started: dora-supervisorctl status; dora status"
fi
log "done"

#!/bin/bash
# dora on Amazon Linux 2023: paste as EC2 user-data, or run as root on a fresh instance.
#
# Fill in the settings below (or export them before running it). The instance needs the role of
# deploy/cloudformation.yaml (its InstanceProfileName output) or one with deploy/iam-policy.json.
# Installs Python 3.11, git, Redis 6.2 (redis6) and the CloudWatch agent, fetches the repository
# into /opt/dora (unless it is already there), then runs /opt/dora/deploy/install.sh.
# Output: /var/log/dora-bootstrap.log. Safe to run again.
set -euo pipefail
exec > >(tee -a /var/log/dora-bootstrap.log) 2>&1

# ---- settings (see deploy/dora.env.example) ------------------------------------------------
export DORA_REPO_URL=${DORA_REPO_URL:-}          # git URL of dora (or copy the repo to /opt/dora first)
export DORA_REPO_REF=${DORA_REPO_REF:-main}
export DORA_KALSHI_ENV=${DORA_KALSHI_ENV:-demo}  # demo first; prod when you mean it
export DORA_KALSHI_KEY_ID=${DORA_KALSHI_KEY_ID:-}
export DORA_KALSHI_PRIVATE_KEY_SECRET_ID=${DORA_KALSHI_PRIVATE_KEY_SECRET_ID:-}  # secret ARN, or:
export DORA_KALSHI_PRIVATE_KEY_SSM_PARAM=${DORA_KALSHI_PRIVATE_KEY_SSM_PARAM:-}  # /parameter/name
export DORA_AWS_REGION=${DORA_AWS_REGION:-}      # empty: this instance's region
export DORA_TABLE_PREFIX=${DORA_TABLE_PREFIX:-dora_}
export DORA_RATE_TIER=${DORA_RATE_TIER:-basic}
export DORA_SNS_TOPIC_ARN=${DORA_SNS_TOPIC_ARN:-}
export DORA_METRICS_NAMESPACE=${DORA_METRICS_NAMESPACE:-dora}
export DORA_LOG_GROUP=${DORA_LOG_GROUP:-/dora}
export DORA_REDIS_URL=${DORA_REDIS_URL:-}        # empty: a local Redis; or rediss://... (ElastiCache)
export DORA_REDIS_CA_CERT=${DORA_REDIS_CA_CERT:-}
# ---------------------------------------------------------------------------------------------

echo "dora bootstrap (Amazon Linux 2023) $(date -u +%FT%TZ)"
dnf install -y -q python3.11 python3.11-pip git amazon-cloudwatch-agent
if [ -z "$DORA_REDIS_URL" ]; then
    dnf install -y -q redis6
fi

if [ ! -f /opt/dora/supervisord.conf ]; then
    [ -n "$DORA_REPO_URL" ] || { echo "set DORA_REPO_URL (or copy the repository to /opt/dora)" >&2; exit 1; }
    git clone --depth 1 --branch "$DORA_REPO_REF" "$DORA_REPO_URL" /opt/dora
fi

export DORA_PYTHON=/usr/bin/python3.11
export DORA_REDIS_SERVICE=redis6 DORA_REDIS_CONF=/etc/redis6/redis6.conf DORA_REDIS_CLI=redis6-cli
exec bash /opt/dora/deploy/install.sh

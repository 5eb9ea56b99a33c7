# kernbot: one image for the agent (DaemonSet) and the bot (Deployment).
#
# BASE: any Debian bookworm image with python3 3.11 and its venv module. scripts/image-test builds
# with a locally made one (no registry is reachable there) and `--pull=never`.
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# The whole install lives in one venv; only that directory reaches the final image, so neither
# wheels nor pip caches nor the source tree are left in any of its layers. Optional build secrets
# (never stored in a layer) let pip reach a package index behind a private CA or mirror:
# `--secret id=pip.conf,src=...` and `--secret id=pip-ca.crt,src=...` (scripts/image-test does).
RUN --mount=type=secret,id=pip.conf,target=/etc/pip.conf \
    --mount=type=secret,id=pip-ca.crt,target=/etc/ssl/certs/kernbot-build-ca.crt \
    python3 -m venv /opt/kernbot \
    && /opt/kernbot/bin/pip install --no-cache-dir --disable-pip-version-check ".[postgres]" \
    && /opt/kernbot/bin/pip uninstall -y -q pip setuptools wheel

FROM ${BASE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="kernbot" \
      org.opencontainers.image.description="Linux OOM kills and SYN floods, explained in Slack" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/kernbot/kernbot"
# journalctl for the unprivileged journal source; iproute2 for `ss` listener queues.
RUN apt-get update \
    && apt-get install -y --no-install-recommends systemd=252.* iproute2=6.1.* \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log
COPY --from=build /opt/kernbot /opt/kernbot
RUN useradd --system --uid 10001 --home-dir /var/lib/kernbot --create-home kernbot \
    && /opt/kernbot/bin/kernbot --version
ENV PATH=/opt/kernbot/bin:$PATH PYTHONUNBUFFERED=1 KERNBOT_STATE_DIR=/var/lib/kernbot
USER 10001
EXPOSE 9100 9101
# Probes the port the running command (agent, bot or up) listens on, from the same settings it
# loaded (environment or --config YAML); see src/kernbot/healthcheck.py.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
    CMD ["python", "-m", "kernbot.healthcheck"]
ENTRYPOINT ["kernbot"]
CMD ["--help"]

# syntax=docker/dockerfile:1
# kernbot: one image for the agent (DaemonSet) and the bot (Deployment).

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[postgres]"

FROM python:3.11-slim-bookworm
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="kernbot" \
      org.opencontainers.image.description="Linux OOM kills and SYN floods, explained in Slack" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/kernbot/kernbot"
# journalctl for the unprivileged journal source; iproute2 for `ss` listener queues.
RUN apt-get update \
    && apt-get install -y --no-install-recommends systemd=252.* iproute2=6.1.* \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels "kernbot[postgres]==${VERSION}" \
    && rm -rf /wheels
RUN useradd --system --uid 10001 --home-dir /var/lib/kernbot --create-home kernbot
ENV PYTHONUNBUFFERED=1 KERNBOT_STATE_DIR=/var/lib/kernbot
USER 10001
EXPOSE 9100 9101
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
    CMD ["python", "-c", "import os,sys,urllib.request; p=os.environ.get('KERNBOT_LISTEN','127.0.0.1:9100').rsplit(':',1)[1]; sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{p}/healthz', timeout=4).status != 200)"]
ENTRYPOINT ["kernbot"]
CMD ["--help"]

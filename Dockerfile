FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
RUN pip install --no-cache-dir /src \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin opsbot \
    && mkdir -p /home/opsbot/data \
    && chown 10001 /home/opsbot/data

USER 10001
WORKDIR /home/opsbot
# The catalog is mounted at /etc/opsbot/opsbot.yml; the embedded store lives in the home volume.
ENV OPSBOT_CONFIG=/etc/opsbot/opsbot.yml \
    DATABASE_URL=sqlite:////home/opsbot/data/opsbot.db \
    PORT=3000
VOLUME ["/home/opsbot/data"]
EXPOSE 3000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 CMD ["opsbot", "healthcheck"]
CMD ["opsbot", "serve"]

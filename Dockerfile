# One image for every govshare service; the container's command names the service:
#   docker run IMAGE service catalog --port 8080        (see deploy/k8s/base/*.yaml)
#   docker run IMAGE migrate                              (the Job run before every rollout)
# Build: docker build -t govshare:0.1.0 .   Base images come from the site's registry mirror on an intranet.

# --- the console's single-page app, from its lockfile --------------------------------------------------------
FROM node:22-bookworm-slim AS console
WORKDIR /web
COPY services/console/web/package.json services/console/web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY services/console/web/ ./
RUN npx --no-install vite build

# --- the Python workspace, exactly as uv.lock pins it ----------------------------------------------------------
FROM python:3.12-slim-bookworm AS build
COPY --from=ghcr.io/astral-sh/uv:0.9 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
WORKDIR /app
COPY pyproject.toml uv.lock ./
COPY libs/ libs/
COPY services/ services/
RUN uv sync --frozen --no-dev
COPY --from=console /web/dist services/console/web/dist

# --- what runs: no compilers, no package managers, not root, read-only root filesystem ---------------------------
FROM python:3.12-slim-bookworm AS runtime
RUN groupadd --system --gid 10001 govshare && useradd --system --uid 10001 --gid govshare --home-dir /var/lib/govshare govshare \
    && mkdir -p /var/lib/govshare && chown govshare:govshare /var/lib/govshare
COPY --from=build --chown=root:root /app /app
ENV PATH=/app/.venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 GOVSHARE_HOME=/var/lib/govshare
WORKDIR /app
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["govshare"]
CMD ["service", "gateway", "--port", "8080"]

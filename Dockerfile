# syntax=docker/dockerfile:1
#
# One image per pixelmill app, from one file:
#
#   docker build --build-arg APP=kv -t pixelmill-kv .
#
# APP is one of kv, taskdb, storage, master, frontend, worker. The build prunes the monorepo to
# that app and the packages it uses (`turbo prune`), installs from the pruned lockfile, builds
# only them and drops the dev dependencies; the image runs `node dist/main.js` in apps/<APP> as
# PID 1 (so SIGTERM reaches the app and it shuts down cleanly), as the unprivileged `node` user.
# e2e/prune.test.ts runs the same steps without Docker.

ARG APP
ARG NODE_VERSION=22

FROM node:${NODE_VERSION}-bookworm-slim AS base
ENV TURBO_TELEMETRY_DISABLED=1 \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    NPM_CONFIG_AUDIT=false

# --- the monorepo cut down to one app ------------------------------------------------------
FROM base AS prune
ARG APP
RUN test -n "${APP}" || { echo 'build with --build-arg APP=<kv|taskdb|storage|master|frontend|worker>' >&2; exit 1; }
WORKDIR /repo
# The turbo version the repository pins, so pruning behaves as it does in the tests.
COPY package.json ./
RUN --mount=type=cache,target=/root/.npm \
    npm install --global "turbo@$(node -p "require('./package.json').devDependencies.turbo")"
COPY . .
# turbo prune leaves out the root compiler options every package extends: copied by hand.
RUN turbo prune "@pixelmill/${APP}" --docker --out-dir /pruned \
 && cp tsconfig.base.json /pruned/full/

# --- install, build, drop the dev dependencies ---------------------------------------------
FROM base AS build
ARG APP
# better-sqlite3 (kv, taskdb) compiles here when no prebuilt binary fits.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Manifests and lockfile first: this layer is reused while only sources change.
COPY --from=prune /pruned/json/ ./
RUN --mount=type=cache,target=/root/.npm npm ci
COPY --from=prune /pruned/full/ ./
RUN npx turbo run build --filter="@pixelmill/${APP}" \
 && npm prune --omit=dev \
 && rm -rf .turbo node_modules/.cache apps/*/src apps/*/test packages/*/src packages/*/test \
 && find . -name node_modules -prune -o -type f \( -name 'tsconfig*.json' -o -name 'jest.config.js' -o -name 'turbo.json' \) -exec rm -f {} +

# --- what runs: the built app and its production dependencies -------------------------------
FROM base AS runtime
ARG APP
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    LOG_LEVEL=info
WORKDIR /app
# Owned by root, read-only to the app; only /data is the app's to write.
COPY --from=build /app ./
RUN mkdir /data && chown node:node /data
WORKDIR /app/apps/${APP}
USER node
CMD ["node", "dist/main.js"]

# The servers answer GET /healthz on their port; slim images have no curl, Node has fetch.
FROM runtime AS server
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + process.env.PORT + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# --- one final stage per app, chosen by APP ---------------------------------------------------
FROM server AS app-kv
ENV PORT=3000 DATA_DIR=/data
EXPOSE 3000

FROM server AS app-taskdb
ENV PORT=3001 DATA_DIR=/data
EXPOSE 3001

FROM server AS app-storage
ENV PORT=3002 DATA_DIR=/data
EXPOSE 3002

FROM server AS app-master
ENV PORT=3003
EXPOSE 3003

FROM server AS app-frontend
ENV PORT=8080
EXPOSE 8080

# The worker listens on no port: it pulls work from master.
FROM runtime AS app-worker

FROM app-${APP}

# The gateway, the demo upstream and the traffic generator share this image.
#   docker build -t authgw:dev .
# Node 24 runs the TypeScript sources directly (type stripping); there is no build step.
FROM node:24.21.0-bookworm-slim

WORKDIR /app

# `npm ci --omit=dev` is not an option: the pinned `node` runtime is a
# devDependency, and the traffic generator uses dev tooling. Install scripts
# are skipped: they only fetch that runtime and embedded PostgreSQL, which the
# image gets from the base image and the postgres service.
COPY package.json package-lock.json .npmrc ./
RUN npm ci --ignore-scripts --no-audit --no-fund && npm cache clean --force

COPY src ./src
COPY scripts ./scripts

ENV NODE_ENV=production
USER node

EXPOSE 3000 9464
CMD ["node", "--import", "./src/telemetry/otel-bootstrap.ts", "src/main.ts"]

# The gateway, the demo upstream and the traffic generator share this image.
#   docker build -t authgw:dev .
# Node 24 runs the TypeScript sources directly (type stripping); there is no
# build step. The base image provides Node 24 (the `node` devDependency pins
# the same version for npm scripts outside the image), so only production
# dependencies are installed: the demo upstream needs fastify and jose, the
# traffic generator nothing but Node's fetch. Install scripts are skipped: they
# only fetch that runtime and set up embedded PostgreSQL, which the image does
# not use (DATABASE_URL points at the postgres service).
FROM node:24.21.0-bookworm-slim

WORKDIR /app

COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

COPY src ./src
COPY scripts ./scripts

ENV NODE_ENV=production
# Inside a container the gateway must listen on every interface; production
# otherwise requires HOST to be set explicitly.
ENV HOST=0.0.0.0
# Files stay owned by root and read-only to the process.
USER node

EXPOSE 3000 9464
CMD ["node", "--import", "./src/telemetry/otel-bootstrap.ts", "src/main.ts"]

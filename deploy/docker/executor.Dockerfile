# The executor and work-unit base image: `clusterjobs-executor` for the agents, and the default
# base for work units (specs' container.image), with the tools work units commonly call.
# Build from the repository root:
#   docker build -f deploy/docker/executor.Dockerfile -t clusterjobs/executor:0.1.0 .
# The executor needs neither the chain libraries nor pyeoskit: the package is installed without
# its dependencies, then only what executor/ imports.

FROM python:3.11.11-slim-bookworm AS builder
WORKDIR /src
COPY setup.cfg pyproject.toml README.md ./
COPY scheduler ./scheduler
COPY executor ./executor
COPY actors ./actors
COPY contracts ./contracts
RUN pip download --no-deps --no-binary :all: http-parser==0.9.0 -d /tmp/hp \
 && tar -xzf /tmp/hp/http-parser-0.9.0.tar.gz -C /tmp/hp \
 && cd /tmp/hp/http-parser-0.9.0 \
 && python -c 'from setuptools import setup; setup(name="http-parser", version="0.9.0", packages=["http_parser"])' bdist_wheel -d /wheels \
 && pip wheel --no-deps -w /wheels /src pymesos==0.3.15

FROM python:3.11.11-slim-bookworm
COPY --from=builder /wheels /wheels
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates coreutils procps \
 && rm -rf /var/lib/apt/lists/* \
 && pip install --no-cache-dir --no-index --no-deps --find-links /wheels clusterjobs pymesos http-parser \
 && pip install --no-cache-dir "kazoo>=2.9" "addict>=2.4" six "requests>=2.31" "hdfs>=2.7" "jsonschema>=4.18" \
 && rm -rf /wheels \
 && groupadd --system --gid 10001 clusterjobs \
 && useradd --system --uid 10001 --gid clusterjobs --home-dir /home/clusterjobs --create-home clusterjobs
USER 10001:10001
WORKDIR /home/clusterjobs
ENTRYPOINT ["clusterjobs-executor"]

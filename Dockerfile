# syntax=docker/dockerfile:1
# The connector image, shaped like Airbyte's own Python connector images
# (docker-images/Dockerfile.python-connector in airbytehq/airbyte): a builder stage on the base
# image installs the connector into /usr/local, the final stage copies that and runs as the
# base image's non-root `airbyte` user, with AIRBYTE_ENTRYPOINT naming the console script.
# Only the connector is installed: no report, no sandbox (scripts/install-connector.sh).
#
#   docker build -t airbyte/destination-codat-expenses:dev .
#
# The base image is metadata.yaml's connectorBuildOptions.baseImage (unit_tests/test_deploy.py
# keeps the two the same): 4.1.0 carries Python 3.13; 4.0.2 (Python 3.11) works too.
ARG BASE_IMAGE=docker.io/airbyte/python-connector-base:4.1.0@sha256:1d1aa21d34e851df4e8a87b391c27724c06e2597608e7161f4d167be853bd7b6

FROM ${BASE_IMAGE} AS builder
WORKDIR /airbyte/integration_code
RUN pip install --no-cache-dir uv==0.13.9
COPY pyproject.toml uv.lock README.md LICENSE ./
COPY destination_codat_expenses ./destination_codat_expenses
COPY codat_sandbox ./codat_sandbox
COPY report_app ./report_app
COPY scripts/install-connector.sh ./scripts/
RUN UV=uv scripts/install-connector.sh /usr/local/bin/python /tmp/dist \
    && pip uninstall --yes uv

FROM ${BASE_IMAGE}
WORKDIR /airbyte/integration_code
COPY --from=builder /usr/local /usr/local
USER airbyte
ENV AIRBYTE_ENTRYPOINT="destination-codat-expenses"
ENTRYPOINT ["destination-codat-expenses"]

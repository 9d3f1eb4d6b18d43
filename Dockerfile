# Multi-stage: build a wheel with its dependencies, run it slim and non-root.
FROM python:3.11-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir --upgrade pip wheel
COPY pyproject.toml README.md ./
COPY bus ./bus
COPY adapters ./adapters
COPY functions ./functions
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 LAMBDABUS_LOG_FORMAT=json
RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin lambdabus
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
WORKDIR /var/task
USER 10001
EXPOSE 9000
ENV LAMBDABUS_ADMIN_PORT=9000
# Exec form: the process is PID 1 and receives SIGTERM to drain.
ENTRYPOINT ["lambdabus"]
CMD ["--help"]

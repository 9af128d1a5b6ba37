# The image the re-planning CronJob runs (`--planner-image`): planner plus its shipped
# catalog (configs/). Build: docker build -t <registry>/planner:0.1.0 .
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY planner ./planner
COPY configs ./configs
RUN pip install --no-cache-dir .
ENV PLANNER_CONFIGS=/app/configs
# Any non-root uid works (the CronJob sets 1000); /tmp is an emptyDir in the pod.
USER 1000:1000
ENTRYPOINT ["planner"]

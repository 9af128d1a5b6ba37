# The image the re-planning CronJob runs (`--planner-image`): planner with its catalog
# (configs/) and stored profiles (profiles/, passed as `--profiles /app/profiles` by the
# rendered CronJob). Build with `make image` (tag = package version); push it and pin the
# CronJob to its digest (docs/deploy.md).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY planner ./planner
RUN pip install --no-cache-dir .
COPY configs ./configs
COPY profiles ./profiles
ENV PLANNER_CONFIGS=/app/configs
# Any non-root uid works (the CronJob sets 1000); /tmp is an emptyDir in the pod.
USER 1000:1000
ENTRYPOINT ["planner"]

"""jobs: the user's jobs as library functions of typed requests (CLI, notebooks, CronJob)."""

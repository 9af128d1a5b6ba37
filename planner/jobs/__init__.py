"""Jobs: the user's jobs (plan, render, evaluate, replan, profile) as library functions.

Each job takes one typed request (`jobs.requests`), composes the stages and the io layer,
and returns a typed result; the CLI parses flags into the request, calls the job and
prints (`planner.summaries` formats results). Notebooks, the CronJob and tests call the
same functions. Layers: cli -> jobs -> io and stages -> types; nothing imports upward.

Import the job modules where they are used (`from planner.jobs.planning import
plan_job`): they load the stages, and the stages load pandas, OR-Tools and kubernetes.
`jobs.requests` stays light so a command can build its request before any of that loads.
"""

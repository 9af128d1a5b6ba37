"""Render: Placement -> typed Kubernetes objects (the `kubernetes.client` V1 models).

Pure: no files, no cluster. `render.objects.render_manifests` builds every object of a
placed plan; `planner.io.manifests` serialises and writes them. `render.settings` holds
what a rendering may vary and imports no Kubernetes code, so the CLI can build it cheaply.
"""

"""Types every stage shares: names, calls, the APL, shapes, plans and clusters.

They sit below the stages (ingest, aggregate, profiles, search, place, render, simulate)
and import none of them, so any stage can depend on them without depending on another.
"""

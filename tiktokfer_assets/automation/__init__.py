"""Automation of the code location: jobs, sensors, and the trending monitor (its assets, job and sensor).

Each domain of :mod:`tiktokfer_assets.defs` picks its own from here.
"""
